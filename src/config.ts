import path from 'node:path';
import { z } from 'zod';
import { VoxtraceError } from './errors.ts';
import { type FaultPlan, FaultPlanError, parseFaultPlan } from './standin/faults.ts';

/** Every variable voxtrace reads, parsed once at start-up (names and defaults: CONVENTIONS.md). */
const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

const postgresUrl = z
  .string()
  .trim()
  .refine((v) => /^postgres(ql)?:\/\//.test(v) && URL.canParse(v), {
    message: 'must be a postgres:// or postgresql:// URL',
  });

const httpUrl = z
  .string()
  .trim()
  .refine((v) => /^https?:\/\//.test(v) && URL.canParse(v), { message: 'must be an http(s):// URL' });

const envSchema = z.object({
  DATABASE_URL: postgresUrl.optional(),
  VOXTRACE_DATA_DIR: z.string().trim().min(1).default('./.voxtrace'),
  VOXTRACE_PORT: port.default(8750),
  // not in the fixed table: containers set 0.0.0.0; the default keeps a laptop's API private
  VOXTRACE_HOST: z.string().trim().min(1).default('127.0.0.1'),
  VOXTRACE_API_URL: httpUrl.default('http://127.0.0.1:8750'),
  VOXTRACE_API_KEY: z.string().trim().min(1).optional(),
  VOXTRACE_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  VOXTRACE_AUTO_MIGRATE: booleanFlag.default(true),
  VOXTRACE_UPSTREAM_URL: httpUrl.optional(),
  VOXTRACE_UPSTREAM_CID: z.string().trim().regex(/^\d+$/, 'must be a numeric client id').optional(),
  VOXTRACE_UPSTREAM_TOKEN: z.string().trim().min(1).optional(),
  VOXTRACE_UPSTREAM_API: z.enum(['deepfake', 'behavioral']).default('deepfake'),
  VOXTRACE_STANDIN_PORT: port.default(8751),
  VOXTRACE_STANDIN_TOKEN: z.string().trim().min(1).optional(),
  VOXTRACE_STANDIN_SPEED: z.coerce.number({ error: 'must be a number' }).min(0, 'must be ≥ 0').default(0.05),
  // checked here in full, so that a wrong plan stops `start` and `standin` with the other config problems
  VOXTRACE_STANDIN_FAULTS: z
    .string()
    .trim()
    .transform((text, ctx): FaultPlan => {
      try {
        return parseFaultPlan(text);
      } catch (error) {
        if (!(error instanceof FaultPlanError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
        return z.NEVER;
      }
    })
    .optional(),
  VOXTRACE_WORKER_CONCURRENCY: z.coerce.number().int().min(1, 'must be ≥ 1').max(256).default(4),
  VOXTRACE_LEASE_SECONDS: z.coerce.number().int().min(2, 'must be ≥ 2 seconds').default(60),
  VOXTRACE_MAX_ATTEMPTS: z.coerce.number().int().min(1, 'must be ≥ 1').default(8),
  VOXTRACE_MAX_UPLOAD_MB: z.coerce.number().positive('must be > 0').default(200),
  VOXTRACE_KEEP_AUDIO: booleanFlag.default(false),
  VOXTRACE_ENROL_MIN_SPEECH_S: z.coerce.number().min(0, 'must be ≥ 0 seconds').default(8),
  VOXTRACE_WATCHLIST_FAR: z.coerce
    .number({ error: 'must be a number' })
    .gt(0, 'must be a false-accept rate above 0')
    .max(0.1, 'must be at most 0.1 (a watchlist hit at 1 in 10 false accepts would be noise)')
    .default(0.001),
  VOXTRACE_VOICE_REUSE_ACCOUNTS: z.coerce.number().int('must be a whole number').min(2, 'must be ≥ 2').default(3),
  VOXTRACE_VOICE_REUSE_DAYS: z.coerce.number().positive('must be > 0 days').default(30),
  VOXTRACE_SPOOF_MIN_UTTERANCE_S: z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must be ≥ 0 seconds')
    .default(2),
  VOXTRACE_SPOOF_CALL_SHARE: z.coerce
    .number({ error: 'must be a number' })
    .gt(0, 'must be a share above 0')
    .max(1, 'must be a share of at most 1')
    .default(0.5),
  VOXTRACE_SPOOF_CONFIDENT_P: z.coerce
    .number({ error: 'must be a number' })
    .min(0.5, 'must be a posterior of at least 0.5 (below it the upstream says bonafide)')
    .max(1, 'must be a posterior of at most 1')
    .default(0.99),
  VOXTRACE_SPOOF_GROWTH_PER_DAY: z.coerce.number().int('must be a whole number').min(1, 'must be ≥ 1').default(10),
});

export type Config = {
  databaseUrl: string | undefined;
  dataDir: string;
  port: number;
  host: string;
  apiUrl: string;
  apiKey: string | undefined;
  logLevel: z.infer<typeof envSchema>['VOXTRACE_LOG_LEVEL'];
  autoMigrate: boolean;
  upstream: {
    url: string | undefined;
    cid: string | undefined;
    token: string | undefined;
    api: 'deepfake' | 'behavioral';
  };
  standin: { port: number; token: string | undefined; speed: number; faults: FaultPlan | undefined };
  worker: { concurrency: number; leaseSeconds: number; maxAttempts: number };
  maxUploadBytes: number;
  keepAudio: boolean;
  voices: VoiceSettings;
  spoofs: SpoofSettings;
};

/** What the voices feature reads from the environment (its services take this, never `Config`). */
export type VoiceSettings = {
  /** seconds of speech an identity needs before it is enrolled (customer, fraudster, staff) */
  enrolMinSpeechS: number;
  /** the false-accept rate per comparison at or below which a voice matches the watchlist */
  watchlistFar: number;
  /** distinct accounts one voice is heard on, within `voiceReuseDays`, that raise `voice_reuse` */
  voiceReuseAccounts: number;
  voiceReuseDays: number;
};

/** The voice settings' defaults (CONVENTIONS), for callers without a config (tests, benchmarks). */
export const DEFAULT_VOICE_SETTINGS: VoiceSettings = {
  enrolMinSpeechS: 8,
  watchlistFar: 0.001,
  voiceReuseAccounts: 3,
  voiceReuseDays: 30,
};

/** What the spoofs feature reads from the environment (docs/spoofs.md, "A call's verdict"). */
export type SpoofSettings = {
  /** utterances shorter than this carry no verdict into the call's */
  minUtteranceS: number;
  /** the share of judged speech time labelled spoofed at or above which a call is `spoofed` */
  spoofedShare: number;
  /** a spoofed utterance at this pSpoofed or above makes a call with less spoofed speech `mixed` */
  confidentP: number;
  /** recordings a spoof cluster gains within 24 hours that raise `spoof_cluster_growth` */
  growthPerDay: number;
};

export const DEFAULT_SPOOF_SETTINGS: SpoofSettings = {
  minUtteranceS: 2,
  spoofedShare: 0.5,
  confidentP: 0.99,
  growthPerDay: 10,
};

export class ConfigError extends VoxtraceError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/**
 * Parses the environment into a typed config; throws ConfigError with one line per wrong
 * variable (never echoing the value: it may be a secret). Empty strings count as unset.
 * @example const config = loadConfig(process.env);
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((name) => [name, env[name]] as const)
      .filter(([, value]) => value !== undefined && value.trim() !== ''),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const upstreamProblems: string[] = [];
  if (e.VOXTRACE_UPSTREAM_URL && (!e.VOXTRACE_UPSTREAM_CID || !e.VOXTRACE_UPSTREAM_TOKEN)) {
    upstreamProblems.push(
      'VOXTRACE_UPSTREAM_URL is set: VOXTRACE_UPSTREAM_CID and VOXTRACE_UPSTREAM_TOKEN are required with it',
    );
  }
  if (upstreamProblems.length > 0) throw new ConfigError(upstreamProblems);
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: path.resolve(e.VOXTRACE_DATA_DIR),
    port: e.VOXTRACE_PORT,
    host: e.VOXTRACE_HOST,
    apiUrl: e.VOXTRACE_API_URL,
    apiKey: e.VOXTRACE_API_KEY,
    logLevel: e.VOXTRACE_LOG_LEVEL,
    autoMigrate: e.VOXTRACE_AUTO_MIGRATE,
    upstream: {
      url: e.VOXTRACE_UPSTREAM_URL,
      cid: e.VOXTRACE_UPSTREAM_CID,
      token: e.VOXTRACE_UPSTREAM_TOKEN,
      api: e.VOXTRACE_UPSTREAM_API,
    },
    standin: {
      port: e.VOXTRACE_STANDIN_PORT,
      token: e.VOXTRACE_STANDIN_TOKEN,
      speed: e.VOXTRACE_STANDIN_SPEED,
      faults: e.VOXTRACE_STANDIN_FAULTS,
    },
    worker: {
      concurrency: e.VOXTRACE_WORKER_CONCURRENCY,
      leaseSeconds: e.VOXTRACE_LEASE_SECONDS,
      maxAttempts: e.VOXTRACE_MAX_ATTEMPTS,
    },
    maxUploadBytes: Math.round(e.VOXTRACE_MAX_UPLOAD_MB * 1024 * 1024),
    keepAudio: e.VOXTRACE_KEEP_AUDIO,
    voices: {
      enrolMinSpeechS: e.VOXTRACE_ENROL_MIN_SPEECH_S,
      watchlistFar: e.VOXTRACE_WATCHLIST_FAR,
      voiceReuseAccounts: e.VOXTRACE_VOICE_REUSE_ACCOUNTS,
      voiceReuseDays: e.VOXTRACE_VOICE_REUSE_DAYS,
    },
    spoofs: {
      minUtteranceS: e.VOXTRACE_SPOOF_MIN_UTTERANCE_S,
      spoofedShare: e.VOXTRACE_SPOOF_CALL_SHARE,
      confidentP: e.VOXTRACE_SPOOF_CONFIDENT_P,
      growthPerDay: e.VOXTRACE_SPOOF_GROWTH_PER_DAY,
    },
  };
}
