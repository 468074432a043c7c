import path from 'node:path';
import type { Command } from 'commander';
import type { ApiClient } from '../client/api.ts';
import { loadConfig } from '../config.ts';
import { VoxtraceError } from '../errors.ts';
import { type ApiOptions, allPages, answered, idList, table, withApi, withApiOptions } from './api-command.ts';
import { err, out } from './support.ts';

/**
 * `voxtrace staff enrol|proposals|confirm|reject`: the contact centre's own voices, which must not
 * raise voice-reuse alerts nor crowd search answers. Agents are enrolled from audio (each PATH, a
 * file or a folder of one agent's recordings, is uploaded, processed and enrolled) or from
 * voiceprints of calls; voxtrace's own proposals are confirmed or rejected. Through the API.
 */

const KEY_HELP = 'API key: read for proposals, write for the rest (default: VOXTRACE_API_KEY)';
type Output = ApiOptions & { json?: boolean };

export function registerStaff(program: Command) {
  const staff = program
    .command('staff')
    .description('enrol members of staff, and decide on the voices voxtrace proposes');

  withApiOptions(staff.command('enrol'), KEY_HELP)
    .description(
      'enrol agents: each PATH (an audio file, or a folder of one agent’s recordings) becomes one staff identity, ' +
        'named after it; or --voiceprints of calls become one',
    )
    .argument('[paths...]', 'audio files or folders, one agent each')
    .option('--voiceprints <ids...>', 'enrol these voiceprints (space- or comma-separated) as one agent instead')
    .option('--name <name>', 'the name to show (one agent only; default: the file or folder name)')
    .option('--json', 'the identities created, as a JSON array')
    .action((paths: string[], opts: Output & { voiceprints?: string[]; name?: string }) =>
      withApi(opts, async (api) => {
        if (opts.voiceprints && paths.length > 0) throw new VoxtraceError('give PATHs or --voiceprints, not both');
        if (!opts.voiceprints && paths.length === 0)
          throw new VoxtraceError('name at least one PATH, or --voiceprints');
        if (opts.name && paths.length > 1) throw new VoxtraceError('--name names one agent: give one PATH with it');
        const agents = opts.voiceprints
          ? [{ name: opts.name ?? null, voiceprintIds: idList(opts.voiceprints) }]
          : await voiceprintsFromAudio(api, opts, paths);
        const created = [];
        for (const agent of agents) {
          const identity = answered(
            await api.createIdentity({
              kind: 'staff',
              voiceprintIds: agent.voiceprintIds,
              ...(agent.name ? { name: agent.name } : {}),
              reason: 'enrolled as staff',
            }),
          );
          created.push(identity);
          if (!opts.json)
            out(
              `enrolled ${identity.name ?? identity.id} as staff: ${identity.id} (${identity.voiceprintCount} voiceprints)`,
            );
        }
        if (opts.json) out(JSON.stringify(created));
      }),
    );

  withApiOptions(staff.command('proposals'), KEY_HELP)
    .description('the voices voxtrace proposes as staff, with why')
    .option('--json', 'as a JSON array')
    .action((opts: Output) =>
      withApi(opts, async (api) => {
        const proposed = await allPages((cursor) =>
          api.listIdentities({ proposed: 'staff', limit: 500, ...(cursor ? { cursor } : {}) }),
        );
        if (opts.json) {
          out(JSON.stringify(proposed));
          return;
        }
        if (proposed.length === 0) {
          out('no staff proposals');
          return;
        }
        for (const line of table(
          ['IDENTITY', 'ACCOUNTS (30 D)', 'CALLS', 'TWO-SPEAKER', 'CHANNEL', 'PROPOSED AT'],
          proposed.map((i) => {
            const e = i.staffProposal?.evidence;
            return [
              i.id,
              String(e?.accounts ?? '-'),
              String(e?.calls ?? '-'),
              e ? `${Math.round(e.twoSpeakerShare * 100)} %` : '-',
              e ? `${e.channel ?? '(none)'} ${Math.round(e.channelShare * 100)} %` : '-',
              i.staffProposal?.proposedAt ?? '-',
            ];
          }),
        )) {
          out(line);
        }
      }),
    );

  for (const decision of ['confirm', 'reject'] as const) {
    withApiOptions(staff.command(decision), KEY_HELP)
      .description(
        decision === 'confirm'
          ? 'confirm a proposed voice as staff (its open voice-reuse alerts are dismissed)'
          : 'reject a proposal: the voice is never proposed again',
      )
      .argument('<identityId>')
      .option('--note <text>', 'kept with the decision')
      .option('--json', 'the identity afterwards as JSON')
      .action((identityId: string, opts: Output & { note?: string }) =>
        withApi(opts, async (api) => {
          const decided = answered(await api.decideStaff(identityId, decision, opts.note));
          if (opts.json) {
            out(JSON.stringify(decided));
            return;
          }
          out(
            decision === 'confirm'
              ? `identity ${decided.id} is staff (${decided.dismissedAlerts} voice-reuse alerts dismissed)`
              : `identity ${decided.id}: staff proposal rejected`,
          );
        }),
      );
  }
}

/**
 * Uploads each PATH's audio, waits until it is processed, and takes from each recording its
 * speaker with the most speech (an enrolment recording holds the agent alone, or mostly).
 */
async function voiceprintsFromAudio(api: ApiClient, opts: ApiOptions & { name?: string }, paths: string[]) {
  const { runIngest } = await import('./ingest/run.ts');
  const config = loadConfig();
  const agents: { name: string; voiceprintIds: string[] }[] = [];
  for (const given of paths) {
    const result = await runIngest({
      apiUrl: opts.url ?? config.apiUrl,
      apiKey: opts.key ?? config.apiKey,
      paths: [given],
      wait: true,
      progress: process.stderr,
    });
    const failed = result.recordings.filter((r) => r.status !== 'complete');
    for (const r of failed) err(`${r.files.join(', ')}: ${r.status}${r.error ? ` (${r.error})` : ''}`);
    for (const rejected of result.rejected) err(`${rejected.file}: refused (${rejected.detail})`);
    const voiceprintIds: string[] = [];
    for (const recording of result.recordings.filter((r) => r.status === 'complete')) {
      const detail = answered(await api.getRecording(recording.id));
      const main = [...detail.voiceprints].sort((a, b) => b.speechSeconds - a.speechSeconds)[0];
      if (main) voiceprintIds.push(main.id);
      else err(`${recording.files.join(', ')}: no speaker found in it`);
    }
    if (voiceprintIds.length === 0) throw new VoxtraceError(`${given}: no recording gave a voice to enrol`);
    agents.push({ name: opts.name ?? path.basename(given).replace(/\.(wav|mp3)$/i, ''), voiceprintIds });
  }
  return agents;
}
