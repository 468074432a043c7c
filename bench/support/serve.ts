import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const cli = path.join(import.meta.dirname, '..', '..', 'src', 'cli.ts');

/**
 * `voxtrace serve` on `url` in its own process (its own event loop and heap, as in production), on
 * a random local port, once /readyz answers. Migrations are the caller's: the server never runs them.
 * @example const server = await startServer(url); … await server.stop();
 */
export async function startServer(url: string): Promise<{ base: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = 18_750 + Math.floor(Math.random() * 1000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-serve-'));
  const child = spawn(process.execPath, ['--max-semi-space-size=4', cli, 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: url,
      VOXTRACE_PORT: String(port),
      VOXTRACE_HOST: '127.0.0.1',
      VOXTRACE_DATA_DIR: dataDir,
      VOXTRACE_LOG_LEVEL: 'warn',
      VOXTRACE_AUTO_MIGRATE: 'false',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${port}`;
  let last = 'no answer';
  for (let i = 0; i < 300; i++) {
    const ready = await fetch(`${base}/readyz`).then(
      async (r) => {
        last = `${r.status} ${(await r.text()).slice(0, 300)}`;
        return r.ok;
      },
      () => false,
    );
    if (ready) return { base, child, stop };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await stop();
  throw new Error(`voxtrace serve did not become ready within 60 s (last /readyz: ${last})`);
}
