import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AUDIO_HEAD_BYTES } from '../src/audio/sniff.ts';
import { inspectAudio } from '../src/standin/audio.ts';
import { generateDemoCalls, parseDemoDataOptions, type TruthLine } from '../src/standin/demo-data.ts';
import { runCli } from './support/cli.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-demo-data-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const readTruth = (dir: string): TruthLine[] =>
  fs
    .readFileSync(path.join(dir, 'truth.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

describe('./voxtrace demo-data', () => {
  it('writes <accountRef>/<callId>.wav and truth.jsonl; each file carries its call in a manifest', async () => {
    const out = path.join(tmp, 'a');
    const run = await runCli(
      ['demo-data', '--calls', '80', '--speakers', '12', '--fraudsters', '2', '--campaigns', '2', out],
      {},
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/wrote 80 calls/);
    const truth = readTruth(out);
    expect(truth).toHaveLength(80);
    for (const line of truth) {
      expect(Object.keys(line).sort()).toEqual(
        ['accountRef', 'callAt', 'callId', 'channel', 'file', 'fraudster', 'speakers', 'utterances'].sort(),
      );
      expect(line.file).toBe(`${line.accountRef}/${line.callId}.wav`);
      for (const speaker of line.speakers) expect(Object.keys(speaker).sort()).toEqual(['label', 'role', 'speakerId']);
      for (const u of line.utterances) {
        expect(Object.keys(u).sort()).toEqual(['end', 'id', 'speakerLabel', 'spoofFamily', 'start']);
      }
      const bytes = fs.readFileSync(path.join(out, line.file));
      const info = inspectAudio(bytes.subarray(0, AUDIO_HEAD_BYTES), bytes.length);
      expect(info?.format).toBe('wav');
      const manifest = info?.manifest;
      expect(manifest).toMatchObject({
        version: 1,
        callId: line.callId,
        accountRef: line.accountRef,
        channel: line.channel,
        callAt: line.callAt,
        utterances: line.utterances,
      });
      expect(manifest?.speakers.map(({ label, speakerId, role }) => ({ label, speakerId, role }))).toEqual(
        line.speakers,
      );
      // the audio is short; the manifest carries the call's real length
      expect(bytes.length).toBeLessThan(8 * 1024);
      expect(manifest?.durationS).toBeGreaterThanOrEqual(30);
    }
    // the same seed writes the same data set
    const again = path.join(tmp, 'a-again');
    await runCli(
      ['demo-data', '--calls', '80', '--speakers', '12', '--fraudsters', '2', '--campaigns', '2', again],
      {},
    );
    expect(fs.readFileSync(path.join(again, 'truth.jsonl'))).toEqual(fs.readFileSync(path.join(out, 'truth.jsonl')));
    const first = truth[0] as TruthLine;
    expect(fs.readFileSync(path.join(again, first.file))).toEqual(fs.readFileSync(path.join(out, first.file)));
    const other = path.join(tmp, 'a-seed-2');
    await runCli(
      ['demo-data', '--calls', '80', '--speakers', '12', '--fraudsters', '2', '--campaigns', '2', '--seed', '2', other],
      {},
    );
    expect(fs.readFileSync(path.join(other, 'truth.jsonl'))).not.toEqual(
      fs.readFileSync(path.join(out, 'truth.jsonl')),
    );
  });

  it('rejects bad flags with a clear message and exit code 1', async () => {
    const out = path.join(tmp, 'bad');
    for (const [flags, message] of [
      [['--speakers', '5', '--fraudsters', '1', '--campaigns', '1'], /--calls is required/],
      [['--calls', '10', '--speakers', '2', '--fraudsters', '3', '--campaigns', '1'], /must not exceed --speakers/],
    ] as [string[], RegExp][]) {
      const run = await runCli(['demo-data', ...flags, out], {});
      expect([flags.join(' '), run.code]).toEqual([flags.join(' '), 1]);
      expect(run.stderr).toMatch(message);
    }
    expect(fs.existsSync(out)).toBe(false);
    const base = { calls: '10', speakers: '5', fraudsters: '1', campaigns: '1' };
    for (const [flags, message] of [
      [{ calls: 'ten' }, /--calls must be a whole number/],
      [{ calls: '0' }, /--calls must be a positive integer/],
      [{ speakers: '0', fraudsters: '0' }, /--speakers must be a positive integer/],
      [{ fraudsters: '-1' }, /--fraudsters must be 0 or more/],
      [{ campaigns: '1.5' }, /--campaigns must be a whole number/],
      [{ seed: 'x' }, /--seed must be a whole number/],
    ] as [Record<string, string>, RegExp][]) {
      expect(() => parseDemoDataOptions({ ...base, ...flags })).toThrow(message);
    }
    expect(parseDemoDataOptions(base)).toEqual({ calls: 10, speakers: 5, fraudsters: 1, campaigns: 1, seed: 1 });
  });
});

describe('the demo population', () => {
  const options = parseDemoDataOptions({ calls: 3000, speakers: 400, fraudsters: 6, campaigns: 3, seed: 4 });
  const calls = [...generateDemoCalls(options)].map((c) => c.truth);

  it('looks like a contact centre: own customers, a small staff on many accounts, 30–120 s calls', () => {
    const withAgent = calls.filter((c) => c.speakers.some((s) => s.role === 'agent'));
    expect(withAgent.length / calls.length).toBeGreaterThan(0.8);
    expect(withAgent.length / calls.length).toBeLessThan(0.9);
    const agents = new Map<string, Set<string>>();
    for (const call of withAgent) {
      const agent = call.speakers.find((s) => s.role === 'agent')?.speakerId as string;
      agents.set(agent, (agents.get(agent) ?? new Set()).add(call.accountRef));
    }
    expect(agents.size).toBe(10); // max(3, 400 / 40)
    for (const accounts of agents.values()) expect(accounts.size).toBeGreaterThan(50);
    const genuine = calls.filter((c) => c.fraudster === null);
    const ownCustomer = genuine.filter((c) =>
      c.speakers.some((s) => s.role === 'caller' && s.speakerId === c.accountRef.replace('acc-', 'cust-')),
    );
    expect(ownCustomer.length / genuine.length).toBeGreaterThan(0.9);
    const now = Date.now();
    let utterances = 0;
    let short = 0;
    for (const call of calls) {
      expect(now - Date.parse(call.callAt)).toBeLessThan(91 * 86_400_000);
      expect(['phone', 'app', 'web']).toContain(call.channel);
      const end = Math.max(...call.utterances.map((u) => u.end));
      expect(end).toBeLessThanOrEqual(120);
      for (const u of call.utterances) {
        expect(u.end - u.start).toBeLessThanOrEqual(9);
        if (u.end - u.start < 2) short++;
      }
      utterances += call.utterances.length;
    }
    expect(utterances / calls.length).toBeGreaterThan(7);
    expect(utterances / calls.length).toBeLessThan(15);
    expect(short / utterances).toBeGreaterThan(0.05);
    // calls come in time order
    expect(calls.map((c) => c.callAt)).toEqual(calls.map((c) => c.callAt).sort());
  });

  it('has fraudsters calling several accounts, with clones spoofed by their campaign and genuine calls', () => {
    const byFraudster = new Map<string, TruthLine[]>();
    for (const call of calls.filter((c) => c.fraudster !== null)) {
      byFraudster.set(call.fraudster as string, [...(byFraudster.get(call.fraudster as string) ?? []), call]);
    }
    expect(byFraudster.size).toBe(6);
    const families = new Set<string>();
    for (const [fraudster, fraudCalls] of byFraudster) {
      expect(new Set(fraudCalls.map((c) => c.accountRef)).size).toBeGreaterThanOrEqual(3);
      let clones = 0;
      for (const call of fraudCalls) {
        const speaker = call.speakers.find((s) => s.role === 'fraudster');
        expect(speaker?.speakerId).toBe(fraudster);
        const spoofed = call.utterances.filter((u) => u.spoofFamily !== null);
        // only the fraudster's utterances can be synthetic, all of one campaign
        expect(spoofed.every((u) => u.speakerLabel === speaker?.label)).toBe(true);
        expect(new Set(spoofed.map((u) => u.spoofFamily)).size).toBeLessThanOrEqual(1);
        if (spoofed.length > 0) clones++;
        for (const u of spoofed) families.add(u.spoofFamily as string);
      }
      expect(clones).toBeGreaterThan(0);
      expect(clones).toBeLessThan(fraudCalls.length);
    }
    expect([...families].sort()).toEqual(['family-00', 'family-01', 'family-02']);
    expect(calls.filter((c) => c.fraudster === null).every((c) => c.utterances.every((u) => !u.spoofFamily))).toBe(
      true,
    );
  });

  it('marks some calls noisy (hard cases) in the manifest', () => {
    const manifests = [...generateDemoCalls(options)].map((c) => c.manifest);
    const noisy = manifests.filter((m) => m.speakers.some((s) => s.noisy));
    expect(noisy.length / manifests.length).toBeGreaterThan(0.04);
    expect(noisy.length / manifests.length).toBeLessThan(0.12);
    const clones = manifests.flatMap((m) => m.speakers.filter((s) => s.cloneOf));
    expect(clones.every((s) => s.role === 'fraudster' && s.cloneOf?.startsWith('cust-'))).toBe(true);
  });

  // its speed is measured in bench/ (no timed assertions in tests: these machines are shared)
  it('reports progress on stderr for large runs', async () => {
    const out = path.join(tmp, 'big');
    const run = await runCli(
      ['demo-data', '--calls', '2000', '--speakers', '400', '--fraudsters', '10', '--campaigns', '3', out],
      {},
    );
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/2000\/2000 calls written/);
    expect(readTruth(out)).toHaveLength(2000);
  }, 60_000);
});
