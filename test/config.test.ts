import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('applies the defaults of CONVENTIONS.md when nothing is set', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe(path.resolve('./.voxtrace'));
    expect(config.port).toBe(8750);
    expect(config.apiUrl).toBe('http://127.0.0.1:8750');
    expect(config.logLevel).toBe('info');
    expect(config.autoMigrate).toBe(true);
    expect(config.upstream).toEqual({ url: undefined, cid: undefined, token: undefined, api: 'deepfake' });
    expect(config.standin).toMatchObject({ port: 8751, speed: 0.05 });
    expect(config.worker).toEqual({ concurrency: 4, leaseSeconds: 60, maxAttempts: 8 });
    expect(config.maxUploadBytes).toBe(200 * 1024 * 1024);
    expect(config.keepAudio).toBe(false);
    expect(config.voices).toEqual({
      enrolMinSpeechS: 8,
      watchlistFar: 0.001,
      voiceReuseAccounts: 3,
      voiceReuseDays: 30,
    });
  });

  it('parses the voice settings, and names each one out of range', () => {
    const config = loadConfig({
      VOXTRACE_WATCHLIST_FAR: '0.0001',
      VOXTRACE_VOICE_REUSE_ACCOUNTS: '5',
      VOXTRACE_VOICE_REUSE_DAYS: '7',
    });
    expect(config.voices).toMatchObject({ watchlistFar: 0.0001, voiceReuseAccounts: 5, voiceReuseDays: 7 });
    let caught: unknown;
    try {
      loadConfig({
        VOXTRACE_WATCHLIST_FAR: '0',
        VOXTRACE_VOICE_REUSE_ACCOUNTS: '1.5',
        VOXTRACE_VOICE_REUSE_DAYS: '-1',
      });
    } catch (error) {
      caught = error;
    }
    expect((caught as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'VOXTRACE_VOICE_REUSE_ACCOUNTS',
      'VOXTRACE_VOICE_REUSE_DAYS',
      'VOXTRACE_WATCHLIST_FAR',
    ]);
  });

  it('parses the spoof settings, defaults as documented, and names each one out of range', () => {
    expect(loadConfig({}).spoofs).toEqual({ minUtteranceS: 2, spoofedShare: 0.5, confidentP: 0.99, growthPerDay: 10 });
    const config = loadConfig({
      VOXTRACE_SPOOF_MIN_UTTERANCE_S: '3',
      VOXTRACE_SPOOF_CALL_SHARE: '0.6',
      VOXTRACE_SPOOF_CONFIDENT_P: '0.9',
      VOXTRACE_SPOOF_GROWTH_PER_DAY: '25',
    });
    expect(config.spoofs).toEqual({ minUtteranceS: 3, spoofedShare: 0.6, confidentP: 0.9, growthPerDay: 25 });
    let caught: unknown;
    try {
      loadConfig({
        VOXTRACE_SPOOF_MIN_UTTERANCE_S: 'two',
        VOXTRACE_SPOOF_CALL_SHARE: '0',
        VOXTRACE_SPOOF_CONFIDENT_P: '0.3',
        VOXTRACE_SPOOF_GROWTH_PER_DAY: '0',
      });
    } catch (error) {
      caught = error;
    }
    expect((caught as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'VOXTRACE_SPOOF_CALL_SHARE',
      'VOXTRACE_SPOOF_CONFIDENT_P',
      'VOXTRACE_SPOOF_GROWTH_PER_DAY',
      'VOXTRACE_SPOOF_MIN_UTTERANCE_S',
    ]);
  });

  it('parses set values and treats empty strings as unset', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5432/voxtrace',
      VOXTRACE_PORT: '9000',
      VOXTRACE_AUTO_MIGRATE: 'false',
      VOXTRACE_KEEP_AUDIO: '1',
      VOXTRACE_STANDIN_SPEED: '0',
      VOXTRACE_UPSTREAM_API: '',
    });
    expect(config.databaseUrl).toBe('postgres://u:p@db:5432/voxtrace');
    expect(config.port).toBe(9000);
    expect(config.autoMigrate).toBe(false);
    expect(config.keepAudio).toBe(true);
    expect(config.standin.speed).toBe(0);
    expect(config.upstream.api).toBe('deepfake');
  });

  it('reports one message per wrong variable, naming it, without echoing values', () => {
    let caught: unknown;
    try {
      loadConfig({
        DATABASE_URL: 'mysql://secret-password@x/y',
        VOXTRACE_PORT: '70000',
        VOXTRACE_LOG_LEVEL: 'loud',
        VOXTRACE_AUTO_MIGRATE: 'maybe',
        VOXTRACE_STANDIN_FAULTS: '{not json',
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'DATABASE_URL',
      'VOXTRACE_AUTO_MIGRATE',
      'VOXTRACE_LOG_LEVEL',
      'VOXTRACE_PORT',
      'VOXTRACE_STANDIN_FAULTS',
    ]);
    expect((caught as Error).message).not.toContain('secret-password');
  });

  it('parses a fault plan in full, and reads no test switch', () => {
    const plan = loadConfig({
      VOXTRACE_STANDIN_FAULTS: '{"rules": [{"on": "submit", "fault": "status-429", "times": 2}]}',
    });
    expect(plan.standin.faults).toEqual({ rules: [{ on: 'submit', fault: 'status-429', times: 2 }] });
    expect(() => loadConfig({ VOXTRACE_STANDIN_FAULTS: '{"rules": [{"on": "submit", "fault": "explode"}]}' })).toThrow(
      /VOXTRACE_STANDIN_FAULTS: invalid fault plan: rules\[0\]\.fault/,
    );
    // the worker's test switches are passed by the crash tests themselves, never read from the environment
    const config = loadConfig({
      VOXTRACE_WORKER_UNSAFE: 'no-lease-reclaim',
      VOXTRACE_WORKER_PAUSE_BEFORE_STORE_MS: '5',
    });
    expect(JSON.stringify(config)).not.toMatch(/unsafe|pause|lease-reclaim/i);
  });

  it('requires the client id and token with an upstream URL', () => {
    expect(() => loadConfig({ VOXTRACE_UPSTREAM_URL: 'https://api.example.test/v5' })).toThrow(
      /VOXTRACE_UPSTREAM_CID and VOXTRACE_UPSTREAM_TOKEN/,
    );
    expect(() => loadConfig({ VOXTRACE_UPSTREAM_CID: 'abc' })).toThrow(
      /VOXTRACE_UPSTREAM_CID: must be a numeric client id/,
    );
  });
});

describe('upstreamTarget', () => {
  it('is the real API when VOXTRACE_UPSTREAM_URL is set', async () => {
    const { upstreamTarget } = await import('../src/upstream/from-config.ts');
    const config = loadConfig({
      VOXTRACE_UPSTREAM_URL: 'https://api.example.test/v5',
      VOXTRACE_UPSTREAM_CID: '77',
      VOXTRACE_UPSTREAM_TOKEN: 'secret',
      VOXTRACE_UPSTREAM_API: 'behavioral',
    });
    expect(upstreamTarget(config)).toEqual({
      baseUrl: 'https://api.example.test/v5',
      cid: '77',
      token: 'secret',
      api: 'behavioral',
      standin: false,
    });
  });

  it('is the stand-in on its port otherwise, once its token is known', async () => {
    const { upstreamTarget } = await import('../src/upstream/from-config.ts');
    expect(upstreamTarget(loadConfig({}))).toBeNull();
    expect(upstreamTarget(loadConfig({ VOXTRACE_STANDIN_PORT: '9999', VOXTRACE_STANDIN_TOKEN: 't' }))).toEqual({
      baseUrl: 'http://127.0.0.1:9999/v5',
      cid: '1',
      token: 't',
      api: 'deepfake',
      standin: true,
    });
  });
});
