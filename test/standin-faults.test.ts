import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoCalls } from '../src/standin/demo-data.ts';
import { FaultPlanError } from '../src/standin/faults.ts';
import { type FaultPlan, type Standin, startStandin } from '../src/standin/server.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { parseResultsDocument } from '../src/upstream/results.ts';
import { cleanEnv, cliPath, repoRoot, runCli } from './support/cli.ts';
import { until } from './support/until.ts';

type ProcessItem = { pid: number; name: string; status: number; statusmsg: string };

const CID = 55;
const manifest = [...generateDemoCalls({ calls: 5, speakers: 3, fraudsters: 0, campaigns: 0, seed: 9 })][0]?.manifest;
const wav = encodeCallWav(manifest ?? null);

let standin: Standin;
const base = () => `${standin.url}/detection/clients/${CID}`;
const headers = () => ({ 'X-Auth-Token': standin.token });

function submit(name: string, signal?: AbortSignal) {
  const form = new FormData();
  form.set('name', name);
  form.set('embeddings', 'true');
  form.set('file', new Blob([new Uint8Array(wav)]), `${name}.wav`);
  return fetch(`${base()}/processes/audio`, { method: 'POST', body: form, headers: headers(), signal });
}

async function created(name: string): Promise<ProcessItem> {
  const response = await submit(name);
  expect(response.status).toBe(200);
  return (await response.json()) as ProcessItem;
}

const get = (path: string, signal?: AbortSignal) => fetch(`${base()}${path}`, { headers: headers(), signal });

function setPlan(plan: FaultPlan) {
  standin.setFaults(plan);
}

beforeAll(async () => {
  standin = await startStandin({ speed: 0 });
});
afterEach(() => {
  standin.setFaults({ rules: [] });
  standin.release();
});
afterAll(async () => {
  await standin?.close();
});

describe('status faults', () => {
  it('answers 429 with Retry-After and {code, message} for the first N submissions, creating nothing', async () => {
    setPlan({ rules: [{ on: 'submit', fault: 'status-429', times: 2, retryAfter: 3 }] });
    const before = standin.stats();
    for (let i = 0; i < 2; i++) {
      const response = await submit('limited');
      expect(response.status).toBe(429);
      expect(response.headers.get('retry-after')).toBe('3');
      expect(await response.json()).toEqual({ code: 429, message: expect.any(String) });
    }
    await created('limited');
    const after = standin.stats();
    expect((after.requests.submit ?? 0) - (before.requests.submit ?? 0)).toBe(3);
    expect(after.submissions.limited).toBe(1);
    expect(after.processes - before.processes).toBe(1);
  });

  it('answers 500 and 503 (Retry-After 1 by default), in rule order, then normally', async () => {
    const { pid } = await created('status-faults');
    setPlan({
      rules: [
        { on: 'status', fault: 'status-500' },
        { on: 'status', fault: 'status-503' },
      ],
    });
    const first = await get(`/processes/${pid}`);
    expect(first.status).toBe(500);
    expect(await first.json()).toEqual({ code: 500, message: expect.any(String) });
    const second = await get(`/processes/${pid}`);
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('1');
    expect((await get(`/processes/${pid}`)).status).toBe(200);
  });

  it('filters by process name: submissions by their name, status and results by the process name', async () => {
    const { pid: otherPid } = await created('other');
    const { pid: targetPid } = await created('target');
    setPlan({ rules: [{ on: 'any', name: 'target', fault: 'status-503', times: 10 }] });
    // each body is read to its end: a results document left unread would hold its socket open
    const status = async (answer: Promise<Response>) => {
      const response = await answer;
      await response.arrayBuffer();
      return response.status;
    };
    expect(await status(submit('other'))).toBe(200);
    expect(await status(get(`/processes/${otherPid}`))).toBe(200);
    expect(await status(get(`/processes/${otherPid}/results`))).toBe(200);
    expect(await status(get('/processes'))).toBe(200);
    expect(await status(submit('target'))).toBe(503);
    expect(await status(get(`/processes/${targetPid}`))).toBe(503);
    expect(await status(get(`/processes/${targetPid}/results`))).toBe(503);
  });

  it('meets only requests that would succeed: bad tokens and unknown pids do not use up a rule', async () => {
    setPlan({ rules: [{ on: 'status', fault: 'status-500' }] });
    expect((await get('/processes/1')).status).toBe(404);
    expect((await fetch(`${base()}/processes/1`)).status).toBe(401);
    const { pid } = await created('after-404');
    expect((await get(`/processes/${pid}`)).status).toBe(500);
  });

  it('applies auth and list faults', async () => {
    setPlan({
      rules: [
        { on: 'auth', fault: 'status-503', retryAfter: 7 },
        { on: 'list', fault: 'status-429' },
      ],
    });
    const auth = await fetch(`${standin.url}/auth`, { headers: { ...headers(), 'X-Auth-Client': String(CID) } });
    expect(auth.status).toBe(503);
    expect(auth.headers.get('retry-after')).toBe('7');
    expect((await get('/processes')).status).toBe(429);
    expect((await get('/processes')).status).toBe(200);
  });

  it('fires for a seeded fraction with rate: the same plan gives the same sequence', async () => {
    const sequence = async () => {
      const s = await startStandin({
        speed: 0,
        faults: { seed: 11, rules: [{ on: 'list', fault: 'status-500', rate: 0.5 }] },
      });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 30; i++) {
          statuses.push((await fetch(`${s.url}/clients/1/processes`, { headers: { 'X-Auth-Token': s.token } })).status);
        }
        return statuses;
      } finally {
        await s.close();
      }
    };
    const first = await sequence();
    expect(await sequence()).toEqual(first);
    const failures = first.filter((s) => s === 500).length;
    expect(failures).toBeGreaterThan(5);
    expect(failures).toBeLessThan(25);
  });
});

describe('delivery faults', () => {
  it('holds a submission: the process exists, the 200 waits for release()', async () => {
    setPlan({ rules: [{ on: 'submit', fault: 'hold' }] });
    const before = standin.stats().processes;
    let settled = false;
    const pending = submit('held').then((r) => {
      settled = true;
      return r;
    });
    await until('one held response', () => standin.stats().held === 1);
    expect(standin.stats().processes).toBe(before + 1);
    expect(settled).toBe(false);
    expect(standin.release()).toBe(1);
    const response = await pending;
    expect(response.status).toBe(200);
    expect(((await response.json()) as ProcessItem).name).toBe('held');
    expect(standin.stats().held).toBe(0);
  });

  it('keeps the work of a held submission whose client gave up, and no longer counts it as held', async () => {
    setPlan({ rules: [{ on: 'submit', fault: 'hold', times: 2 }] });
    const abort = new AbortController();
    const pending = submit('abandoned', abort.signal);
    await until('one held response', () => standin.stats().held === 1);
    abort.abort();
    await expect(pending).rejects.toThrow();
    await until('no held response', () => standin.stats().held === 0);
    const listed = (await (await get('/processes?sort=desc&pageSize=1')).json()) as ProcessItem[];
    expect(listed[0]?.name).toBe('abandoned');
    expect(standin.stats().submissions.abandoned).toBe(1);
    // the next held response is released over HTTP
    const next = submit('released-over-http');
    await until('one held response', () => standin.stats().held === 1);
    const released = await fetch(`${standin.url}/__standin/release`, { method: 'POST', headers: headers() });
    expect(await released.json()).toEqual({ released: 1 });
    expect((await next).status).toBe(200);
  });

  it('drops the connection after 200 headers and part of the body', async () => {
    const { pid } = await created('dropped');
    setPlan({ rules: [{ on: 'status', fault: 'drop' }] });
    await expect(get(`/processes/${pid}`).then((r) => r.text())).rejects.toThrow();
    expect((await get(`/processes/${pid}`)).status).toBe(200);
  });

  it('is slow: no response before the client gives up, and close() does not wait for it', async () => {
    setPlan({ rules: [{ on: 'list', fault: 'slow', delayMs: 20_000 }] });
    const started = Date.now();
    await expect(get('/processes', AbortSignal.timeout(300))).rejects.toThrow(/aborted|timeout/i);
    expect(Date.now() - started).toBeLessThan(5_000);
    const own = await startStandin({ speed: 0, faults: { rules: [{ on: 'list', fault: 'slow' }] } });
    const waiting = fetch(`${own.url}/clients/1/processes`, { headers: { 'X-Auth-Token': own.token } }).catch(
      (error: Error) => error,
    );
    await until('one list request', () => own.stats().requests.list === 1);
    const closing = Date.now();
    await own.close();
    expect(Date.now() - closing).toBeLessThan(2_000);
    await waiting;
  });
});

describe('process and document faults', () => {
  it('ends processes with -1 (fail) and -2 (insufficient credits); their results are refused', async () => {
    setPlan({
      rules: [
        { on: 'submit', name: 'broken', fault: 'fail' },
        { on: 'submit', name: 'broke', fault: 'insufficient-credits' },
      ],
    });
    const failed = await created('broken');
    expect(failed).toMatchObject({ status: -1, statusmsg: expect.stringMatching(/^Processing failed: /) });
    const poor = await created('broke');
    expect(poor).toMatchObject({ status: -2 });
    for (const { pid } of [failed, poor]) {
      const response = await get(`/processes/${pid}/results`);
      expect(response.status).toBe(409);
      expect(await response.json()).toEqual({ code: 409, message: expect.any(String) });
    }
    // with processing time, the failure comes at the end (pending, processing, then -1)
    const slow = await startStandin({ speed: 0.005, faults: { rules: [{ on: 'submit', fault: 'fail' }] } });
    try {
      const form = new FormData();
      form.set('file', new Blob([new Uint8Array(wav)]), 'x.wav');
      const response = await fetch(`${slow.url}/clients/1/processes/audio`, {
        method: 'POST',
        body: form,
        headers: { 'X-Auth-Token': slow.token },
      });
      const item = (await response.json()) as ProcessItem;
      expect(item.status).toBe(0);
      await until('the process to fail', async () => {
        const now = (await (
          await fetch(`${slow.url}/clients/1/processes/${item.pid}`, { headers: { 'X-Auth-Token': slow.token } })
        ).json()) as ProcessItem;
        return now.status === -1;
      });
    } finally {
      await slow.close();
    }
  });

  it('spoils results: trimmed and wrong-dimensions fail the strict parser, non-json fails JSON.parse', async () => {
    const { pid } = await created('spoiled');
    setPlan({
      rules: [
        { on: 'results', fault: 'trimmed' },
        { on: 'results', fault: 'wrong-dimensions' },
        { on: 'results', fault: 'non-json' },
      ],
    });
    const trimmed = await get(`/processes/${pid}/results`);
    expect(trimmed.status).toBe(200);
    const trimmedDocument = await trimmed.json();
    expect(JSON.stringify(trimmedDocument)).toContain(', ..., ');
    expect(() => parseResultsDocument(trimmedDocument, { api: 'deepfake' })).toThrow(/trimmed/);

    const wrong = await get(`/processes/${pid}/results`);
    expect(wrong.status).toBe(200);
    const wrongDocument = await wrong.json();
    expect(() => parseResultsDocument(wrongDocument, { api: 'deepfake' })).toThrow(/191 values, expected 192/);

    const html = await get(`/processes/${pid}/results`);
    expect(html.status).toBe(200);
    const text = await html.text();
    expect(() => JSON.parse(text)).toThrow();

    const good = await get(`/processes/${pid}/results`);
    expect(parseResultsDocument(await good.json(), { api: 'deepfake' }).utterances.length).toBeGreaterThan(0);
  });

  it('spoils results with nul-byte: valid JSON the parser accepts, a transcript ending in \\u0000', async () => {
    const { pid } = await created('nul');
    setPlan({ rules: [{ on: 'results', fault: 'nul-byte' }] });
    const text = await (await get(`/processes/${pid}/results`)).text();
    // once as the asr prediction's label, once as its finalLabel
    expect(text.match(/\\u0000/g)).toHaveLength(2);
    const parsed = parseResultsDocument(JSON.parse(text), { api: 'deepfake' });
    expect(parsed.utterances[0]?.transcript?.endsWith('\0')).toBe(true);
    const clean = await (await get(`/processes/${pid}/results`)).text();
    expect(clean).not.toContain('\\u0000');
  });
});

describe('control endpoints and plan validation', () => {
  const control = (method: string, path: string, body?: string, token = standin.token) =>
    fetch(`${standin.url}/__standin/${path}`, { method, body, headers: { 'X-Auth-Token': token } });

  it('replaces, shows and clears the plan over HTTP; stats report requests, submissions and processes', async () => {
    const plan = { rules: [{ on: 'submit', fault: 'status-503', times: 1, retryAfter: 2 }], seed: 3 };
    const posted = await control('POST', 'faults', JSON.stringify(plan));
    expect(posted.status).toBe(200);
    expect(await posted.json()).toEqual(plan);
    expect(await (await control('GET', 'faults')).json()).toEqual(plan);
    expect((await submit('via-http')).status).toBe(503);
    expect(await (await control('DELETE', 'faults')).json()).toEqual({ rules: [] });
    expect((await control('GET', 'faults', undefined, 'wrong')).status).toBe(401);
    const stats = await (await control('GET', 'stats')).json();
    expect(Object.keys(stats).sort()).toEqual(['held', 'processes', 'requests', 'submissions']);
    expect(Object.keys(stats.requests).sort()).toEqual(
      ['auth', 'list', 'results', 'status', 'submit', 'submit-url'].sort(),
    );
    expect(stats).toEqual(standin.stats());
  });

  it('refuses bad plans with 400 naming what is wrong', async () => {
    const cases: [string, RegExp][] = [
      ['{not json', /not JSON/],
      ['{"rules": [{"on": "submit", "fault": "explode"}]}', /rules\[0\]\.fault/],
      ['{"rules": [{"on": "submit", "fault": "trimmed"}]}', /rules\[0\]\.on: fault "trimmed"/],
      ['{"rules": [{"on": "results", "fault": "fail"}]}', /rules\[0\]\.on/],
      ['{"rules": [{"on": "list", "fault": "hold", "name": "x"}]}', /rules\[0\]\.name/],
      ['{"rules": [{"on": "submit", "fault": "status-500", "retryAfter": 2}]}', /retryAfter/],
      ['{"rules": [{"on": "submit", "fault": "status-429", "rate": 1.5}]}', /rules\[0\]\.rate/],
      ['{"rules": [{"on": "submit", "fault": "status-429", "times": 0}]}', /rules\[0\]\.times/],
      ['{"rules": [{"on": "submit", "fault": "status-429", "time": 2}]}', /time/],
      ['{"rule": []}', /rules/],
    ];
    for (const [body, message] of cases) {
      const response = await control('POST', 'faults', body);
      expect([body, response.status]).toEqual([body, 400]);
      const error = await response.json();
      expect(error).toEqual({ code: 400, message: expect.stringMatching(message) });
    }
    expect(await (await control('GET', 'faults')).json()).toEqual({ rules: [] });
  });

  it('refuses a bad plan at start-up', async () => {
    await expect(
      startStandin({ faults: { rules: [{ on: 'submit', fault: 'nope' }] } as unknown as FaultPlan }),
    ).rejects.toThrow(FaultPlanError);
  });
});

describe('./voxtrace standin', () => {
  async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  it('prints its URL and generated token, answers the protocol, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [cliPath, 'standin'], {
      cwd: repoRoot,
      env: cleanEnv({ VOXTRACE_STANDIN_PORT: String(port), VOXTRACE_LOG_LEVEL: 'warn', VOXTRACE_STANDIN_SPEED: '0' }),
    });
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const token = await until('the token to be printed', () => /standin token: (\S+)/.exec(stdout)?.[1]);
      expect(stdout).toContain(`http://127.0.0.1:${port}/v5`);
      const auth = await fetch(`http://127.0.0.1:${port}/v5/auth`, {
        headers: { 'X-Auth-Token': token, 'X-Auth-Client': '1' },
      });
      expect(auth.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('uses VOXTRACE_STANDIN_TOKEN without printing it, and refuses a bad VOXTRACE_STANDIN_FAULTS', async () => {
    const bad = await runCli(['standin'], {
      VOXTRACE_STANDIN_PORT: String(await freePort()),
      VOXTRACE_STANDIN_FAULTS: '{"rules": [{"on": "submit", "fault": "explode"}]}',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/VOXTRACE_STANDIN_FAULTS: invalid fault plan: rules\[0\]\.fault/);

    const port = await freePort();
    const child = spawn(process.execPath, [cliPath, 'standin'], {
      cwd: repoRoot,
      env: cleanEnv({
        VOXTRACE_STANDIN_PORT: String(port),
        VOXTRACE_STANDIN_TOKEN: 'my-secret-token',
        VOXTRACE_STANDIN_FAULTS: '{"rules": [{"on": "auth", "fault": "status-503"}]}',
        VOXTRACE_LOG_LEVEL: 'info',
      }),
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await until('the stand-in to listen', () => output.includes(`127.0.0.1:${port}/v5`));
      const auth = () =>
        fetch(`http://127.0.0.1:${port}/v5/auth`, {
          headers: { 'X-Auth-Token': 'my-secret-token', 'X-Auth-Client': '9' },
        });
      expect((await auth()).status).toBe(503);
      expect((await auth()).status).toBe(200);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(output).not.toContain('my-secret-token');
  });
});
