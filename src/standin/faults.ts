import { z } from 'zod';
import { VoxtraceError } from '../errors.ts';
import { seededRandom, seedFrom } from './random.ts';

/**
 * Fault injection: a plan of rules, each saying which requests (kind, process name) get which
 * fault, how often. The first rule that fires for a request wins; rules are consulted in order,
 * so `[{429, times 1}, {500, times 1}]` answers 429, then 500, then normally.
 */
export const requestKinds = ['auth', 'submit', 'submit-url', 'list', 'status', 'results'] as const;
export type RequestKind = (typeof requestKinds)[number];

export const faultKinds = [
  'hold',
  'status-429',
  'status-500',
  'status-503',
  'slow',
  'drop',
  'fail',
  'insufficient-credits',
  'trimmed',
  'wrong-dimensions',
  'non-json',
  'nul-byte',
] as const;
export type FaultKind = (typeof faultKinds)[number];

export type FaultRule = {
  on: RequestKind | 'any';
  name?: string;
  fault: FaultKind;
  times?: number;
  rate?: number;
  retryAfter?: number;
  delayMs?: number;
};
export type FaultPlan = { rules: FaultRule[]; seed?: number };

/** Faults that decide how a submitted process ends: only submissions can carry them. */
const PROCESS_FAULTS = new Set<FaultKind>(['fail', 'insufficient-credits']);
/** Faults that spoil a results document: only results requests can carry them. */
const DOCUMENT_FAULTS = new Set<FaultKind>(['trimmed', 'wrong-dimensions', 'non-json', 'nul-byte']);
const SUBMIT_KINDS = new Set<RequestKind>(['submit', 'submit-url']);
/** Requests that are about one named process; `name` filters only these. */
const NAMED_KINDS = new Set<RequestKind>(['submit', 'submit-url', 'status', 'results']);

const ruleSchema = z
  .strictObject({
    on: z.enum([...requestKinds, 'any']),
    name: z.string().min(1).optional(),
    fault: z.enum(faultKinds),
    times: z.number().int().min(1).optional(),
    rate: z.number().gt(0).max(1).optional(),
    retryAfter: z.number().int().min(0).optional(),
    delayMs: z.number().int().min(0).optional(),
  })
  .superRefine((rule, ctx) => {
    const problem = (message: string, path: string) => ctx.addIssue({ code: 'custom', message, path: [path] });
    if (PROCESS_FAULTS.has(rule.fault) && rule.on !== 'any' && !SUBMIT_KINDS.has(rule.on)) {
      problem(`fault "${rule.fault}" decides how a process ends: use on "submit", "submit-url" or "any"`, 'on');
    }
    if (DOCUMENT_FAULTS.has(rule.fault) && rule.on !== 'any' && rule.on !== 'results') {
      problem(`fault "${rule.fault}" spoils a results document: use on "results" or "any"`, 'on');
    }
    if (rule.name !== undefined && rule.on !== 'any' && !NAMED_KINDS.has(rule.on)) {
      problem(`"name" filters requests about one process; on "${rule.on}" has none`, 'name');
    }
    if (rule.retryAfter !== undefined && rule.fault !== 'status-429' && rule.fault !== 'status-503') {
      problem('"retryAfter" applies to status-429 and status-503 only', 'retryAfter');
    }
    if (rule.delayMs !== undefined && rule.fault !== 'slow') problem('"delayMs" applies to slow only', 'delayMs');
  });

const planSchema = z.strictObject({
  rules: z.array(ruleSchema),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
});

export class FaultPlanError extends VoxtraceError {}

/**
 * Validates a fault plan (a JSON text or an already decoded value); throws FaultPlanError
 * naming each wrong field, e.g. `rules[0].fault: Invalid option: expected one of "hold"|…`.
 * @example const plan = parseFaultPlan('{"rules":[{"on":"submit","fault":"status-429","times":2}]}');
 */
export function parseFaultPlan(input: unknown): FaultPlan {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new FaultPlanError(`the fault plan is not JSON: ${(error as Error).message}`);
    }
  }
  const parsed = planSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
      return `${where.replace(/^\./, '') || '(plan)'}: ${issue.message}`;
    });
    throw new FaultPlanError(`invalid fault plan: ${problems.join('; ')}`);
  }
  return parsed.data as FaultPlan;
}

export type FaultInjector = {
  readonly plan: FaultPlan;
  /** The fault for this request, or null; every call counts as one request of `kind`. */
  pick(kind: RequestKind, processName: string | null): FaultRule | null;
};

/**
 * The stateful side of a plan: per rule, how many requests matched and how many faults fired,
 * and a seeded draw for `rate` rules (so the same request sequence gets the same faults).
 * @example const faults = createFaultInjector(plan, 1); const rule = faults.pick('submit', 'call-1');
 */
export function createFaultInjector(plan: FaultPlan, defaultSeed = 1): FaultInjector {
  const state = plan.rules.map((_, index) => ({
    matched: 0,
    fired: 0,
    random: seededRandom(seedFrom('faults', plan.seed ?? defaultSeed, index)),
  }));
  return {
    plan,
    pick(kind, processName) {
      for (const [index, rule] of plan.rules.entries()) {
        if (!applies(rule, kind, processName)) continue;
        const counters = state[index] as (typeof state)[number];
        counters.matched++;
        const fires =
          rule.rate === undefined
            ? counters.matched <= (rule.times ?? 1)
            : counters.random() < rule.rate && (rule.times === undefined || counters.fired < rule.times);
        if (fires) {
          counters.fired++;
          return rule;
        }
      }
      return null;
    },
  };
}

function applies(rule: FaultRule, kind: RequestKind, processName: string | null): boolean {
  if (rule.on !== 'any' && rule.on !== kind) return false;
  if (PROCESS_FAULTS.has(rule.fault) && !SUBMIT_KINDS.has(kind)) return false;
  if (DOCUMENT_FAULTS.has(rule.fault) && kind !== 'results') return false;
  if (rule.name !== undefined && (!NAMED_KINDS.has(kind) || processName !== rule.name)) return false;
  return true;
}
