import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/cli.ts';

/**
 * Importing a module of voxtrace does nothing but define things: no output, no listening socket or
 * timer, no signal handler, no file written, no exit code. Only the entry point `src/cli.ts` (and
 * the resolve hook it registers, `src/module-hooks.ts`) act when loaded. One fresh Node process
 * imports every other module under src/ in turn and reports what each one did.
 */

const EXEMPT = new Set(['src/cli.ts', 'src/module-hooks.ts']);

function productionModules(): string[] {
  const files = fs.readdirSync(path.join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' });
  return files
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `src/${f.split(path.sep).join('/')}`)
    .filter((f) => !EXEMPT.has(f))
    .sort();
}

// runs in the child: imports each module, comparing the process before and after
const probe = `
const modules = JSON.parse(process.env.VOXTRACE_PROBE_MODULES);
const written = [];
const write = (stream) => { const original = stream.write.bind(stream); stream.write = (chunk, ...rest) => { written.push(String(chunk)); return true; }; return original; };
const stdoutWrite = write(process.stdout);
write(process.stderr);
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection'];
const snapshot = () => ({
  resources: process.getActiveResourcesInfo().sort().join(','),
  listeners: signals.map((s) => s + ':' + process.listenerCount(s)).join(','),
  exitCode: process.exitCode,
});
// Node opens stdin the first time anything imports node:process (its ESM wrapper reads every
// property): opened here, so that a module importing node:process is not taken for one that acts
await import('node:process');
await import(process.env.VOXTRACE_PROBE_HOOKS);
const report = [];
for (const module of modules) {
  const before = snapshot();
  written.length = 0;
  let error = null;
  try { await import(module.url); } catch (e) { error = String(e && e.stack || e); }
  // a timer or socket started on import shows up at once; give promises a turn to start theirs
  await new Promise((resolve) => setImmediate(resolve));
  const after = snapshot();
  const effects = [];
  if (error) effects.push('threw: ' + error.split('\\n')[0]);
  if (written.length) effects.push('wrote: ' + written.join('').slice(0, 200));
  if (after.resources !== before.resources) effects.push('resources ' + before.resources + ' -> ' + after.resources);
  if (after.listeners !== before.listeners) effects.push('listeners ' + before.listeners + ' -> ' + after.listeners);
  if (after.exitCode !== before.exitCode) effects.push('exit code ' + after.exitCode);
  report.push({ module: module.name, effects });
}
stdoutWrite(JSON.stringify(report));
`;

/** Runs the probe over `modules` (name, file) in a fresh Node process whose working directory is `cwd`. */
function runProbe(modules: { name: string; file: string }[], cwd: string) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', probe], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      VOXTRACE_PROBE_HOOKS: pathToFileURL(path.join(repoRoot, 'src/module-hooks.ts')).href,
      VOXTRACE_PROBE_MODULES: JSON.stringify(
        modules.map(({ name, file }) => ({ name, url: pathToFileURL(file).href })),
      ),
    },
  });
}

type ProbeReport = { module: string; effects: string[] }[];

describe('importing a module of src/', () => {
  it('has no side effect, for every module but the entry point', () => {
    const modules = productionModules();
    expect(modules.length).toBeGreaterThan(50);
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-modules-'));
    try {
      const child = runProbe(
        modules.map((name) => ({ name, file: path.join(repoRoot, name) })),
        cwd,
      );
      // it exits by itself: nothing an import started keeps the process alive
      expect(child.error).toBeUndefined();
      expect({ status: child.status, stderr: child.stderr }).toEqual({ status: 0, stderr: '' });
      const report = JSON.parse(child.stdout) as ProbeReport;
      expect(report.map((r) => r.module)).toEqual(modules);
      expect(report.filter((r) => r.effects.length > 0)).toEqual([]);
      // and it wrote no file where it ran (a data directory, a spool)
      expect(fs.readdirSync(cwd)).toEqual([]);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('the probe sees a side effect when there is one', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-modules-'));
    const noisy = path.join(cwd, 'noisy.mjs');
    fs.writeFileSync(noisy, "console.log('hello'); setTimeout(() => {}, 500); process.on('SIGTERM', () => {});");
    try {
      const [report] = JSON.parse(runProbe([{ name: 'noisy', file: noisy }], cwd).stdout) as ProbeReport;
      expect(report?.effects).toEqual([
        expect.stringMatching(/^wrote: hello/),
        expect.stringMatching(/-> .*Timeout/),
        expect.stringMatching(/SIGTERM:0.* -> .*SIGTERM:1/),
      ]);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});
