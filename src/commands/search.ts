import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import type { ApiClient } from '../client/api.ts';
import { VoxtraceError } from '../errors.ts';
import type { SpoofSearchResponse } from '../spoofs/routes.ts';
import type { SpoofSearchBody } from '../spoofs/search-request.ts';
import type { VoiceSearchResponse } from '../voices/routes.ts';
import type { VoiceSearchBody } from '../voices/search-request.ts';
import { type ApiOptions, answered, table, withApi, withApiOptions } from './api-command.ts';
import { err, out } from './support.ts';

/**
 * `voxtrace search voice (FILE | --recording ID [--speaker L] | --voiceprint ID)`: who else sounds
 * like this; `voxtrace search spoof (FILE | --recording ID | --utterance ID)`: which spoof campaign
 * this is. Through the API. A FILE is ingested like any call (intake, worker, upstream), waited
 * for, then searched by its recording.
 */

type SearchOptions = ApiOptions & {
  recording?: string;
  speaker?: string;
  voiceprint?: string;
  k: string;
  minScore?: string;
  groupBy?: 'account' | 'identity';
  includeStaff?: boolean;
  exact?: boolean;
  account?: string[];
  excludeAccount?: string[];
  channel?: string[];
  from?: string;
  to?: string;
  kind?: string[];
  timeout: string;
  json?: boolean;
};

export function registerSearch(program: Command) {
  const search = program.command('search').description('search the stored voices and spoofs (through the API)');
  registerSpoofSearch(search);
  withApiOptions(search.command('voice'), 'API key: read, or write to search a FILE (default: VOXTRACE_API_KEY)')
    .description('the voiceprints nearest a voice: a call recording (ingested first), a recording, or a voiceprint')
    .argument('[file]', 'a call recording (.wav/.mp3): ingested like any call, then searched')
    .option('--recording <id>', 'search with this recording’s voice (its longest speaker unless --speaker)')
    .option('--speaker <label>', 'the speaker label within the recording or FILE, e.g. SPEAKER_01')
    .option('--voiceprint <id>', 'search with this voiceprint')
    .option('-k, --k <n>', 'how many answers (1–1000)', '10')
    .option('--min-score <s>', 'only answers scoring at least this (score = −log10 far; 3 means far ≤ 0.001)')
    .addOption(new Option('--group-by <what>', 'one answer per account or identity').choices(['account', 'identity']))
    .option('--include-staff', 'include voiceprints of staff identities (left out by default)')
    .option('--exact', 'compare every matching voiceprint instead of walking the index')
    .option('--account <ref...>', 'only these accounts')
    .option('--exclude-account <ref...>', 'not these accounts')
    .option('--channel <name...>', 'only these channels')
    .option('--from <iso>', 'calls at or after this instant')
    .option('--to <iso>', 'calls at or before this instant')
    .option('--kind <kind...>', 'only voiceprints in identities of these kinds (customer, fraudster, staff, unknown)')
    .option('--timeout <s>', 'how long to wait for a FILE to be processed', '600')
    .option('--json', 'the answer as JSON: {items, plan, calibration}')
    .action((file: string | undefined, opts: SearchOptions) =>
      withApi(opts, async (api) => {
        const query = await voiceQuery(api, file, opts);
        const answer = answered(await api.searchVoices(searchBody(query, opts)));
        if (opts.json) out(JSON.stringify(answer));
        else printAnswer(answer);
      }),
    );
}

async function voiceQuery(
  api: ApiClient,
  file: string | undefined,
  opts: SearchOptions,
): Promise<VoiceSearchBody['query']> {
  const given = [file !== undefined, opts.recording !== undefined, opts.voiceprint !== undefined].filter(
    Boolean,
  ).length;
  if (given !== 1) throw new VoxtraceError('give exactly one of FILE, --recording ID or --voiceprint ID');
  if (opts.speaker !== undefined && opts.voiceprint !== undefined) {
    throw new VoxtraceError('--speaker names a speaker of a recording or FILE, not of a voiceprint');
  }
  const speaker = opts.speaker === undefined ? {} : { speakerLabel: opts.speaker };
  if (opts.voiceprint !== undefined) return { voiceprintId: opts.voiceprint };
  if (opts.recording !== undefined) return { recordingId: opts.recording, ...speaker };
  return { recordingId: await ingestAndWait(api, file as string, seconds(opts.timeout, '--timeout')), ...speaker };
}

/** Uploads FILE and waits until its recording is stored (or fails), saying so on stderr. */
async function ingestAndWait(api: ApiClient, file: string, timeoutS: number): Promise<string> {
  const uploaded = answered(await api.uploadRecording(file, { accountRef: null, callAt: new Date().toISOString() }));
  err(`search: ${file} → recording ${uploaded.id} (${uploaded.status})`);
  const deadline = Date.now() + timeoutS * 1000;
  let status = uploaded.status;
  while (status !== 'complete') {
    if (status === 'failed' || status === 'dead') {
      const [recording] = answered(await api.recordingsByIds([uploaded.id])).items;
      throw new VoxtraceError(`recording ${uploaded.id} is ${status}: ${recording?.error ?? 'no error recorded'}`);
    }
    if (Date.now() > deadline) {
      throw new VoxtraceError(
        `recording ${uploaded.id} is still ${status} after ${timeoutS} s (is a worker running? --timeout waits longer)`,
      );
    }
    await sleep(500);
    const [recording] = answered(await api.recordingsByIds([uploaded.id])).items;
    if (recording && recording.status !== status) err(`search: recording ${uploaded.id} is ${recording.status}`);
    status = recording?.status ?? status;
  }
  return uploaded.id;
}

type SpoofSearchOptions = ApiOptions & {
  recording?: string;
  utterance?: string;
  k: string;
  clusters: string;
  exact?: boolean;
  account?: string[];
  channel?: string[];
  from?: string;
  to?: string;
  minPSpoofed?: string;
  timeout: string;
  json?: boolean;
};

function registerSpoofSearch(search: Command) {
  withApiOptions(search.command('spoof'), 'API key: read, or write to search a FILE (default: VOXTRACE_API_KEY)')
    .description(
      'the spoof clusters and spoofed utterances nearest a call recording (ingested first), a recording, or an utterance',
    )
    .argument('[file]', 'a call recording (.wav/.mp3): ingested like any call, then searched')
    .option('--recording <id>', 'search with this recording’s utterances')
    .option('--utterance <id>', 'search with this utterance')
    .option('-k, --k <n>', 'how many neighbouring utterances (1–1000)', '10')
    .option('--clusters <n>', 'how many nearest clusters (0–100)', '5')
    .option('--exact', 'compare every matching utterance instead of walking the index')
    .option('--account <ref...>', 'only these accounts')
    .option('--channel <name...>', 'only these channels')
    .option('--from <iso>', 'calls at or after this instant')
    .option('--to <iso>', 'calls at or before this instant')
    .option('--min-p-spoofed <p>', 'only utterances the upstream scored at least this pSpoofed')
    .option('--timeout <s>', 'how long to wait for a FILE to be processed', '600')
    .option('--json', 'the answer as JSON: {verdict, clusters, neighbours, plan}')
    .action((file: string | undefined, opts: SpoofSearchOptions) =>
      withApi(opts, async (api) => {
        const given = [file !== undefined, opts.recording !== undefined, opts.utterance !== undefined].filter(
          Boolean,
        ).length;
        if (given !== 1) throw new VoxtraceError('give exactly one of FILE, --recording ID or --utterance ID');
        const query: SpoofSearchBody['query'] =
          opts.utterance !== undefined
            ? { utteranceId: opts.utterance }
            : {
                recordingId:
                  opts.recording ?? (await ingestAndWait(api, file as string, seconds(opts.timeout, '--timeout'))),
              };
        const filter = {
          ...(opts.account ? { accountRefs: opts.account } : {}),
          ...(opts.channel ? { channels: opts.channel } : {}),
          ...(opts.from ? { from: opts.from } : {}),
          ...(opts.to ? { to: opts.to } : {}),
          ...(opts.minPSpoofed !== undefined ? { minPSpoofed: seconds(opts.minPSpoofed, '--min-p-spoofed') } : {}),
        };
        const answer = answered(
          await api.searchSpoofs({
            query,
            k: whole(opts.k, '--k'),
            clusters: whole(opts.clusters, '--clusters'),
            ...(opts.exact ? { exact: true } : {}),
            ...(Object.keys(filter).length > 0 ? { filter } : {}),
          }),
        );
        if (opts.json) out(JSON.stringify(answer));
        else printSpoofAnswer(answer);
      }),
    );
}

function printSpoofAnswer(answer: SpoofSearchResponse) {
  const { verdict, plan } = answer;
  out(
    verdict.clusterId
      ? `in spoof cluster ${verdict.clusterId}`
      : verdict.novel
        ? 'novel: a spoof in no known cluster'
        : 'in no spoof cluster',
  );
  if (answer.clusters.length > 0) {
    out('nearest clusters:');
    for (const line of table(
      ['cluster', 'label', 'similarity', 'votes', 'size', 'first seen', 'last seen'],
      answer.clusters.map((c) => [
        c.clusterId,
        c.label ?? '-',
        c.similarity.toFixed(3),
        String(c.votes),
        String(c.size),
        c.firstSeenAt ?? '-',
        c.lastSeenAt ?? '-',
      ]),
    )) {
      out(line);
    }
  }
  out(
    `${answer.neighbours.length} spoofed utterance(s) · plan ${plan.method}${plan.efSearch ? ` (ef_search ${plan.efSearch})` : ''} ${plan.ms} ms`,
  );
  if (answer.neighbours.length === 0) return;
  for (const line of table(
    ['similarity', 'utterance', 'recording', 'account', 'call at', 'pSpoofed', 'cluster'],
    answer.neighbours.map((n) => [
      n.similarity.toFixed(3),
      n.utteranceId,
      n.recordingId,
      n.accountRef ?? '-',
      n.callAt ?? '-',
      n.pSpoofed === null ? '-' : n.pSpoofed.toFixed(4),
      n.clusterId ?? '-',
    ]),
  )) {
    out(line);
  }
}

function searchBody(query: VoiceSearchBody['query'], opts: SearchOptions): VoiceSearchBody {
  const filter = {
    ...(opts.account ? { accountRefs: opts.account } : {}),
    ...(opts.excludeAccount ? { excludeAccountRefs: opts.excludeAccount } : {}),
    ...(opts.channel ? { channels: opts.channel } : {}),
    ...(opts.from ? { from: opts.from } : {}),
    ...(opts.to ? { to: opts.to } : {}),
    ...(opts.kind ? { identityKinds: opts.kind as NonNullable<VoiceSearchBody['filter']>['identityKinds'] } : {}),
  };
  return {
    query,
    k: whole(opts.k, '--k'),
    ...(opts.minScore !== undefined ? { minScore: seconds(opts.minScore, '--min-score') } : {}),
    ...(opts.groupBy ? { groupBy: opts.groupBy } : {}),
    ...(opts.includeStaff ? { includeStaff: true } : {}),
    ...(opts.exact ? { exact: true } : {}),
    ...(Object.keys(filter).length > 0 ? { filter } : {}),
  };
}

function printAnswer(answer: VoiceSearchResponse) {
  const { plan, calibration } = answer;
  out(
    `${answer.items.length} voiceprint(s) · plan ${plan.method}${plan.efSearch ? ` (ef_search ${plan.efSearch})` : ''} ` +
      `${plan.ms} ms · far from ${calibration.method === 'cohort' ? `a cohort of ${calibration.cohortSize} voiceprints` : 'the prior (too few voiceprints for a cohort yet)'}`,
  );
  if (answer.items.length === 0) return;
  for (const line of table(
    [
      'score',
      'verdict',
      'similarity',
      'voiceprint',
      'recording',
      'speaker',
      'account',
      'channel',
      'call at',
      'identity',
    ],
    answer.items.map((i) => [
      i.score.toFixed(2),
      i.verdict,
      i.similarity.toFixed(3),
      i.voiceprintId,
      i.recordingId,
      i.speakerLabel,
      i.accountRef ?? '-',
      i.channel ?? '-',
      i.callAt ?? '-',
      i.identityId ? `${i.identityKind} ${i.identityId}` : '-',
    ]),
  )) {
    out(line);
  }
}

function whole(value: string, option: string): number {
  if (!/^\d+$/.test(value)) throw new VoxtraceError(`${option} must be a whole number, got "${value}"`);
  return Number(value);
}

function seconds(value: string, option: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new VoxtraceError(`${option} must be a number ≥ 0, got "${value}"`);
  return n;
}
