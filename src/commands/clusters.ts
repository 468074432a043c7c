import { type Command, Option } from 'commander';
import { VoxtraceError } from '../errors.ts';
import type { SpoofClusterResponse } from '../spoofs/routes.ts';
import { type ApiOptions, allPages, answered, idList, table, withApi, withApiOptions } from './api-command.ts';
import { out } from './support.ts';

/**
 * `voxtrace clusters ls|show|label|merge|split`: an analyst's view of spoof campaigns, and
 * corrections to them. Through the API (like `identities`), so that it works while `start` holds
 * the embedded database, and every change is recorded with the key that made it.
 */

const CLUSTER_KEY_HELP = 'API key: read for ls/show, write for changes (default: VOXTRACE_API_KEY)';
type Output = ApiOptions & { json?: boolean };

export function registerClusters(program: Command) {
  const clusters = program
    .command('clusters')
    .description('list, show and correct spoof clusters: the campaigns behind synthetic voices (through the API)');

  withApiOptions(clusters.command('ls'), CLUSTER_KEY_HELP)
    .description('list spoof clusters: id, label, size, recordings, accounts, growth, first and last seen')
    .addOption(
      new Option('--sort <order>', 'largest, fastest-growing or most recent first')
        .choices(['size', 'growth', 'recent'])
        .default('size'),
    )
    .addOption(
      new Option('--status <status>', 'which clusters')
        .choices(['active', 'merged', 'retired', 'all'])
        .default('active'),
    )
    .option('--limit <n>', 'at most this many (1–500)', '50')
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .option('--json', 'the page as JSON: {items, nextCursor}')
    .action((opts: Output & { sort: string; status: string; limit: string; cursor?: string }) =>
      withApi(opts, async (api) => {
        if (!/^\d+$/.test(opts.limit)) throw new VoxtraceError('--limit must be a whole number from 1 to 500');
        const page = answered(
          await api.listSpoofClusters({
            sort: opts.sort,
            status: opts.status,
            limit: Number(opts.limit),
            cursor: opts.cursor,
          }),
        );
        if (opts.json) {
          out(JSON.stringify(page));
          return;
        }
        if (page.items.length === 0) {
          out('no spoof clusters');
          return;
        }
        for (const line of table(
          ['ID', 'LABEL', 'STATUS', 'SIZE', 'RECORDINGS', 'ACCOUNTS', 'GROWTH 24H', 'FIRST SEEN', 'LAST SEEN'],
          page.items.map((c) => [
            c.id,
            c.label ?? '-',
            c.status,
            String(c.size),
            String(c.recordingCount),
            String(c.accountCount),
            String(c.growth),
            c.firstSeenAt ?? '-',
            c.lastSeenAt ?? '-',
          ]),
        )) {
          out(line);
        }
        if (page.nextCursor) out(`more: --cursor ${page.nextCursor}`);
      }),
    );

  withApiOptions(clusters.command('show'), CLUSTER_KEY_HELP)
    .description('one spoof cluster: figures, daily timeline, accounts, history; its members on request')
    .argument('<id>')
    .option('--members', 'list its member utterances too (latest call first)')
    .option('--json', 'JSON: the cluster, with a `members` array when asked')
    .action((id: string, opts: Output & { members?: boolean }) =>
      withApi(opts, async (api) => {
        const cluster = answered(await api.getSpoofCluster(id));
        const members = opts.members ? await allPages((c) => api.spoofClusterMembers(id, c)) : null;
        if (opts.json) {
          out(JSON.stringify({ ...cluster, ...(members ? { members } : {}) }));
          return;
        }
        printCluster(cluster);
        if (members) {
          out('');
          out(`members (${members.length}):`);
          for (const line of table(
            ['UTTERANCE', 'RECORDING', 'ACCOUNT', 'CHANNEL', 'CALL AT', 'P SPOOFED', 'SIMILARITY'],
            members.map((m) => [
              m.utteranceId,
              m.recordingId,
              m.accountRef ?? '-',
              m.channel ?? '-',
              m.callAt ?? '-',
              m.pSpoofed === null ? '-' : m.pSpoofed.toFixed(4),
              m.similarity.toFixed(3),
            ]),
          )) {
            out(line);
          }
        }
      }),
    );

  withApiOptions(clusters.command('label'), CLUSTER_KEY_HELP)
    .description('set the label and/or notes of a spoof cluster')
    .argument('<id>')
    .option('--label <text>', 'its label, e.g. the campaign or generator it is')
    .option('--notes <text>', 'free notes')
    .option('--clear-label', 'remove its label')
    .option('--json', 'the cluster afterwards as JSON')
    .action((id: string, opts: Output & { label?: string; notes?: string; clearLabel?: boolean }) =>
      withApi(opts, async (api) => {
        if (opts.label !== undefined && opts.clearLabel)
          throw new VoxtraceError('give --label or --clear-label, not both');
        const change = {
          ...(opts.label !== undefined ? { label: opts.label } : {}),
          ...(opts.clearLabel ? { label: null } : {}),
          ...(opts.notes !== undefined ? { notes: opts.notes } : {}),
        };
        if (Object.keys(change).length === 0) throw new VoxtraceError('give --label, --clear-label or --notes');
        const cluster = answered(await api.labelSpoofCluster(id, change));
        printChange(cluster, opts, `labelled ${cluster.id}: ${cluster.label ?? '(no label)'}`);
      }),
    );

  withApiOptions(clusters.command('merge'), CLUSTER_KEY_HELP)
    .description('merge spoof clusters into <id>: their members move there; recluster never undoes it')
    .argument('<id>', 'the cluster that stays')
    .requiredOption('--from <ids...>', 'the clusters merged into it (space- or comma-separated)')
    .requiredOption('--reason <text>', 'why (kept in the history)')
    .option('--json', 'the cluster afterwards as JSON')
    .action((id: string, opts: Output & { from: string[]; reason: string }) =>
      withApi(opts, async (api) => {
        const from = idList(opts.from);
        const cluster = answered(await api.mergeSpoofClusters(id, { from, reason: opts.reason }));
        printChange(cluster, opts, `merged ${from.join(', ')} into ${cluster.id} (now ${cluster.size} utterances)`);
      }),
    );

  withApiOptions(clusters.command('split'), CLUSTER_KEY_HELP)
    .description('split member utterances off <id> into a new spoof cluster; recluster never undoes it')
    .argument('<id>')
    .requiredOption('--utterances <ids...>', 'the member utterances that go (space- or comma-separated)')
    .requiredOption('--reason <text>', 'why (kept in the history)')
    .option('--json', 'the new cluster as JSON')
    .action((id: string, opts: Output & { utterances: string[]; reason: string }) =>
      withApi(opts, async (api) => {
        const cluster = answered(
          await api.splitSpoofCluster(id, { utteranceIds: idList(opts.utterances), reason: opts.reason }),
        );
        printChange(cluster, opts, `split ${cluster.size} utterances off ${id} into ${cluster.id}`);
      }),
    );
}

function printChange(cluster: SpoofClusterResponse, opts: Output, summary: string) {
  if (opts.json) out(JSON.stringify(cluster));
  else out(summary);
}

function printCluster(c: SpoofClusterResponse) {
  const lines: [string, string][] = [
    ['id', c.id],
    ['label', c.label ?? '-'],
    ['status', c.mergedInto ? `${c.status} into ${c.mergedInto}` : c.status],
    ...(c.statusReason ? ([['why', c.statusReason]] as [string, string][]) : []),
    ['size', `${c.size} utterances, ${c.recordingCount} recordings, ${c.accountCount} accounts`],
    ['channels', c.channels.join(', ') || '-'],
    ['seen', `${c.firstSeenAt ?? '-'} … ${c.lastSeenAt ?? '-'} (${c.growth} recordings in the last 24 h)`],
    ['mean pSpoofed', c.meanPSpoofed === null ? '-' : c.meanPSpoofed.toFixed(4)],
    ['radius', c.radius.toFixed(4)],
    ['medoid', c.medoidUtteranceId ?? '-'],
    ['origin', c.analystEditedAt ? `${c.origin}, shaped by an analyst ${c.analystEditedAt}` : c.origin],
    ['accounts', c.accountRefs.join(', ') || '-'],
    ...(c.notes ? ([['notes', c.notes]] as [string, string][]) : []),
  ];
  for (const line of table(['', ''], lines).slice(1)) out(line);
  if (c.timeline.length > 0) {
    out('');
    out('timeline:');
    for (const line of table(
      ['DAY', 'UTTERANCES', 'RECORDINGS'],
      c.timeline.map((d) => [d.day, String(d.utterances), String(d.recordings)]),
    )) {
      out(line);
    }
  }
  if (c.history.length > 0) {
    out('');
    out('history:');
    for (const line of table(
      ['AT', 'ACTION', 'UTTERANCES', 'RELATED', 'BY', 'REASON'],
      c.history.map((e) => [
        e.createdAt,
        e.action,
        String(e.utteranceIds.length),
        e.relatedClusterIds.join(',') || '-',
        e.keyId ? `${e.source} key ${e.keyId}` : e.source,
        e.reason ?? '',
      ]),
    )) {
      out(line);
    }
  }
}
