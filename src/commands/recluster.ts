import type { Command } from 'commander';
import { CLI_ACTOR } from '../audit/audit.ts';
import { reclusterSpoofs, type SpoofReclusterSummary } from '../spoofs/clusters/recluster.ts';
import { type ReclusterSummary, reclusterVoices } from '../voices/identities/recluster.ts';
import { scanVoiceReuse } from '../voices/reuse/scan.ts';
import { err, out, withContext } from './support.ts';

/** `recluster voices` and `recluster spoofs`: batch re-derivation of what clustering found. */
export function registerRecluster(program: Command) {
  const recluster = program
    .command('recluster')
    .description('re-derive what clustering found, over the whole database');
  recluster
    .command('voices')
    .description(
      'recluster the unknown voice identities over the kNN graph, keeping ids stable and leaving alone what an analyst ' +
        'made; then look for voice reuse in the identities it created or grew',
    )
    .option('--json', 'the summary as JSON, with every changed id')
    .action((opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const summary = await reclusterVoices(ctx.db, ctx.config.voices, CLI_ACTOR);
        const voiceReuse = await scanVoiceReuse(ctx.db, ctx.config.voices, [...summary.created, ...summary.grown]);
        if (opts.json) out(JSON.stringify({ ...summary, voiceReuse }));
        else for (const line of [...summaryLines(summary), ...ids('voice reuse', voiceReuse)]) out(line);
      }),
    );
  recluster
    .command('spoofs')
    .description(
      'recluster the spoofed utterances (DBSCAN over the kNN graph), keeping cluster ids stable and leaving alone the ' +
        'clusters an analyst merged or split; then look back over bonafide speech for near misses',
    )
    .option('--json', 'the summary as JSON, with every changed id')
    .action((opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const summary = await reclusterSpoofs(ctx.db, ctx.config.spoofs, CLI_ACTOR, (line) =>
          err(`recluster spoofs: ${line}`),
        );
        if (opts.json) out(JSON.stringify(summary));
        else for (const line of spoofSummaryLines(summary)) out(line);
      }),
    );
}

function spoofSummaryLines(s: SpoofReclusterSummary): string[] {
  return [
    `reclustered ${s.utterances} spoofed utterances into ${s.clusters} active clusters in ${(s.ms / 1000).toFixed(1)} s: ` +
      `${s.created.length} created, ${s.grown.length} grown, ${s.shrunk.length} shrunk, ${s.merged.length} merged, ` +
      `${s.retired.length} retired, ${s.unchanged} unchanged; ${s.moved} utterances moved, ${s.unclustered} now noise; ` +
      `${s.nearMisses} near misses found`,
    ...ids('created', s.created),
    ...ids('grown', s.grown),
    ...ids('shrunk', s.shrunk),
    ...ids('merged', s.merged),
    ...ids('retired', s.retired),
  ];
}

const ids = (label: string, list: string[]) => (list.length ? [`${label}: ${list.join(' ')}`] : []);

function summaryLines(s: ReclusterSummary): string[] {
  return [
    `reclustered ${s.voiceprints} voiceprints into ${s.clusters} unknown identities in ${(s.ms / 1000).toFixed(1)} s: ` +
      `${s.created.length} created, ${s.grown.length} grown, ${s.shrunk.length} shrunk, ${s.retired.length} retired, ` +
      `${s.unchanged} unchanged; ${s.moved} voiceprints moved, ${s.unassigned} unassigned`,
    ...ids('created', s.created),
    ...ids('grown', s.grown),
    ...ids('shrunk', s.shrunk),
    ...ids('retired', s.retired),
  ];
}
