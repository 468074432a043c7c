import type { AnalysisStep } from '../../analysis/runner.ts';
import { DAY_MS } from '../../time.ts';
import { insertProposal, recentCallsOf, unproposedIdentitiesOf } from './queries.ts';
import { STAFF_WINDOW_DAYS, staffRule } from './rule.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const STAFF_PROPOSAL_STEP = 'voices.staff-proposals';

/**
 * The analysis step that proposes staff: each `unknown` or `customer` identity of the stored call that was never
 * proposed (nor rejected) is measured against the rule (rule.ts) over its calls in the window up to
 * this one, and proposed when it meets it. An identity is proposed once; a rejected one never again.
 * @example const steps = [identityStep(settings), staffProposalStep()];
 */
export function staffProposalStep(): AnalysisStep {
  return {
    name: STAFF_PROPOSAL_STEP,
    async run({ tx, event, log }) {
      for (const { identityId, at } of await unproposedIdentitiesOf(tx, event.recordingId)) {
        const calls = await recentCallsOf(tx, identityId, at - STAFF_WINDOW_DAYS * DAY_MS, at);
        const { proposed, evidence } = staffRule(calls);
        if (!proposed) continue;
        await insertProposal(tx, identityId, evidence);
        log.info({ identityId, evidence }, 'proposed as staff');
      }
    },
  };
}
