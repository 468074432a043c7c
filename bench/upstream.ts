/**
 * Upstream client benchmark against the stand-in at speed 0 (instant processing), the stand-in
 * running as its own process (`voxtrace standin`) so that only the client's memory is measured.
 *
 *   node bench/upstream.ts [--submissions N] [--concurrency C] [--upload-mb M]
 *
 * Figures: submissions/s and results/s through the client's keep-alive pool, and the client
 * process's RSS while it streams one M MB file (default 500) as a multipart upload.
 * Writes bench/results/upstream.json and the upstream line of bench/README.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateDemoCalls } from '../src/standin/demo-data.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { createUpstreamClient } from '../src/upstream/client.ts';
import { describeHost } from './support/machine.ts';
import { recordResult } from './support/results.ts';

const benchDir = import.meta.dirname;
const root = path.resolve(benchDir, '..');

function positiveInteger(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`bench/upstream: ${flag} must be a positive whole number, got ${JSON.stringify(value)}\n`);
    process.exit(1);
  }
  return n;
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    submissions: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    'upload-mb': { type: 'string', default: '500' },
  },
});
const submissions = positiveInteger('--submissions', values.submissions);
const concurrency = positiveInteger('--concurrency', values.concurrency);
const uploadMb = positiveInteger('--upload-mb', values['upload-mb']);

/** A WAV header followed by `seconds` of silence; sparse on disk, so a 500 MB file costs no space. */
function writeWav(file: string, dataBytes: number) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(dataBytes, 40);
  fs.writeFileSync(file, header);
  fs.truncateSync(file, 44 + dataBytes);
}

async function startStandinProcess() {
  const token = `bench-${process.pid}`;
  const port = 20000 + (process.pid % 20000);
  const child = spawn(process.execPath, [path.join(root, 'src/cli.ts'), 'standin'], {
    cwd: root,
    env: {
      ...process.env,
      VOXTRACE_STANDIN_PORT: String(port),
      VOXTRACE_STANDIN_TOKEN: token,
      VOXTRACE_STANDIN_SPEED: '0',
      VOXTRACE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes(`:${port}`)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the stand-in exited ${code}: ${out}`)));
  });
  return { url: `http://127.0.0.1:${port}/v5`, token, stop: () => child.kill('SIGTERM') };
}

async function inBatches<T>(count: number, parallel: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-upstream-'));
const standin = await startStandinProcess();
const client = createUpstreamClient({
  baseUrl: standin.url,
  cid: '1',
  token: standin.token,
  api: 'deepfake',
  maxConcurrent: concurrency,
  bodyTimeoutMs: 600_000,
  headersTimeoutMs: 600_000,
});
try {
  // upload memory first, in a fresh process state: 50 MB then 500 MB should cost the same (flat)
  const uploadRss = async (megabytes: number) => {
    const file = path.join(tmp, `upload-${megabytes}.wav`);
    writeWav(file, megabytes * 1024 * 1024);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const started = performance.now();
    await client.submitFile({ file, name: `bench-upload-${megabytes}` });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    fs.rmSync(file);
    return { seconds, before, growth: Math.max(peak, process.memoryUsage().rss) - before };
  };
  process.stderr.write(`uploading a 50 MB file, then a ${uploadMb} MB one…\n`);
  const smallUpload = await uploadRss(50);
  const bigUpload = await uploadRss(uploadMb);

  // realistic calls: demo-data WAVs whose manifests give ~14 utterances and ~150 KB documents
  const calls = [...generateDemoCalls({ calls: 100, speakers: 40, fraudsters: 2, campaigns: 2, seed: 1 })];
  const files = calls.map(({ manifest }, i) => {
    const file = path.join(tmp, `call-${i}.wav`);
    fs.writeFileSync(file, encodeCallWav(manifest));
    return file;
  });
  process.stderr.write(`submitting ${submissions} demo calls with ${concurrency} in flight…\n`);
  let started = performance.now();
  const processes = await inBatches(submissions, concurrency, (i) =>
    client.submitFile({ file: files[i % files.length] as string, name: `bench-${i}` }),
  );
  const submitSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  let resultBytes = 0;
  await inBatches(submissions, concurrency, async (i) => {
    const results = await client.getResults(processes[i]?.pid as number);
    if (results.jsonError) throw new Error(`results of ${processes[i]?.pid} are not JSON`);
    resultBytes += results.rawBody.length;
  });
  const resultsSeconds = (performance.now() - started) / 1000;

  const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  const figures = {
    submissions,
    concurrency,
    submitSeconds: Math.round(submitSeconds * 1000) / 1000,
    submissionsPerSecond: Math.round((submissions / submitSeconds) * 10) / 10,
    resultsSeconds: Math.round(resultsSeconds * 1000) / 1000,
    resultsPerSecond: Math.round((submissions / resultsSeconds) * 10) / 10,
    meanResultKiB: Math.round(resultBytes / submissions / 102.4) / 10,
    uploadMiB: uploadMb,
    uploadSeconds: Math.round(bigUpload.seconds * 100) / 100,
    uploadMiBPerSecond: Math.round((uploadMb / bigUpload.seconds) * 10) / 10,
    clientRssBeforeUploadMiB: mib(bigUpload.before),
    clientRssGrowthDuringUploadMiB: mib(bigUpload.growth),
    clientRssGrowthDuring50MiBUploadMiB: mib(smallUpload.growth),
  };
  const command = ['node', 'bench/upstream.ts', ...process.argv.slice(2)].join(' ');
  recordResult(benchDir, {
    name: 'upstream',
    command,
    machine: describeHost(),
    figures,
    summary: `${figures.submissionsPerSecond} submissions/s, ${figures.resultsPerSecond} results/s of ${figures.meanResultKiB} KiB (stand-in, speed 0, ${concurrency} in flight); ${uploadMb} MB upload: client RSS +${figures.clientRssGrowthDuringUploadMiB} MiB (50 MB: +${figures.clientRssGrowthDuring50MiBUploadMiB})`,
  });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
} finally {
  await client.close();
  standin.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
