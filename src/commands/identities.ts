import { type Command, Option } from 'commander';
import { VoxtraceError } from '../errors.ts';
import type { IdentityResponse } from '../voices/identities/routes.ts';
import { type ApiOptions, allPages, answered, idList, table, withApi, withApiOptions } from './api-command.ts';
import { out } from './support.ts';

/**
 * `voxtrace identities ls|show|create|merge|split|move`: an analyst's view of who is behind the
 * voices, and corrections to it. Through the API (like `ingest`), so that it works while `start`
 * holds the embedded database, and so that every change is recorded with the key that made it.
 */

const IDENTITY_KEY_HELP = 'API key: read for ls/show, write for changes (default: VOXTRACE_API_KEY)';
type Output = ApiOptions & { json?: boolean };
type ChangeOptions = Output & { reason: string };

export function registerIdentities(program: Command) {
  const identities = program
    .command('identities')
    .description('list, show and correct identities: who is behind the voices (through the API)');

  withApiOptions(identities.command('ls'), IDENTITY_KEY_HELP)
    .description('list identities, newest first: id, kind, name, accounts, voiceprints, recordings, last seen')
    .addOption(new Option('--kind <kind>', 'only this kind').choices(['customer', 'fraudster', 'staff', 'unknown']))
    .option('--account <ref>', 'only identities enrolled for or heard on this account')
    .option('--all', 'merged and retired identities too')
    .option('--limit <n>', 'at most this many (1–500)', '50')
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .option('--json', 'the page as JSON: {items, nextCursor}')
    .action((opts: Output & { kind?: string; account?: string; all?: boolean; limit: string; cursor?: string }) =>
      withApi(opts, async (api) => {
        if (!/^\d+$/.test(opts.limit)) throw new VoxtraceError('--limit must be a whole number from 1 to 500');
        const page = answered(
          await api.listIdentities({
            kind: opts.kind,
            accountRef: opts.account,
            includeRetired: opts.all ? true : undefined,
            limit: Number(opts.limit),
            cursor: opts.cursor,
          }),
        );
        if (opts.json) {
          out(JSON.stringify(page));
          return;
        }
        if (page.items.length === 0) {
          out('no identities');
          return;
        }
        for (const line of table(
          ['ID', 'KIND', 'NAME', 'ACCOUNTS', 'VOICEPRINTS', 'RECORDINGS', 'LAST SEEN'],
          page.items.map((i) => [
            i.id,
            i.mergedInto ? `${i.kind} (merged)` : i.retiredAt ? `${i.kind} (retired)` : i.kind,
            i.name ?? '',
            i.accountRefs.join(',') || '-',
            String(i.voiceprintCount),
            String(i.recordingCount),
            i.lastSeenAt,
          ]),
        )) {
          out(line);
        }
        if (page.nextCursor) out(`more: --cursor ${page.nextCursor}`);
      }),
    );

  withApiOptions(identities.command('show'), IDENTITY_KEY_HELP)
    .description('one identity: its counts, accounts, nearest identities; its voiceprints and history on request')
    .argument('<id>')
    .option('--voiceprints', 'list its voiceprints too')
    .option('--history', 'list its history too (newest first)')
    .option('--json', 'JSON: the identity, with `voiceprints` / `history` arrays when asked')
    .action((id: string, opts: Output & { voiceprints?: boolean; history?: boolean }) =>
      withApi(opts, async (api) => {
        const identity = answered(await api.getIdentity(id));
        const voiceprints = opts.voiceprints ? await allPages((c) => api.identityPage(id, 'voiceprints', c)) : null;
        const history = opts.history ? await allPages((c) => api.identityPage(id, 'history', c)) : null;
        if (opts.json) {
          out(
            JSON.stringify({ ...identity, ...(voiceprints ? { voiceprints } : {}), ...(history ? { history } : {}) }),
          );
          return;
        }
        printIdentity(identity);
        if (voiceprints) {
          out('');
          out(`voiceprints (${voiceprints.length}):`);
          for (const line of table(
            ['VOICEPRINT', 'RECORDING', 'SPEAKER', 'ACCOUNT', 'CALL AT', 'SPEECH S', 'P SPOOFED', 'ASSIGNED BY'],
            voiceprints.map((v) => [
              v.voiceprintId,
              v.recordingId,
              v.speakerLabel,
              v.accountRef ?? '-',
              v.callAt ?? '-',
              v.speechSeconds.toFixed(1),
              v.meanPSpoofed === null ? '-' : v.meanPSpoofed.toFixed(2),
              v.assignedBy ?? '-',
            ]),
          )) {
            out(line);
          }
        }
        if (history) {
          out('');
          out(`history (${history.length}):`);
          for (const line of table(
            ['AT', 'ACTION', 'VOICEPRINTS', 'RELATED', 'BY', 'REASON'],
            history.map((e) => [
              e.createdAt,
              e.action,
              String(e.voiceprintIds.length),
              e.relatedIdentityIds.join(',') || '-',
              e.keyId ? `${e.source} key ${e.keyId}` : e.source,
              e.reason ?? '',
            ]),
          )) {
            out(line);
          }
        }
      }),
    );

  withChangeOptions(identities.command('create'))
    .description('enrol a customer, fraudster or staff identity from voiceprints')
    .addOption(
      new Option('--kind <kind>', 'customer, fraudster or staff')
        .choices(['customer', 'fraudster', 'staff'])
        .makeOptionMandatory(),
    )
    .requiredOption('--voiceprints <ids...>', 'its voiceprints (space- or comma-separated)')
    .option('--name <name>', 'a name to show')
    .option('--account <ref>', 'the account (required for a customer)')
    .action(
      (
        opts: Omit<ChangeOptions, 'reason'> & {
          reason?: string;
          kind: 'customer' | 'fraudster' | 'staff';
          voiceprints: string[];
          name?: string;
          account?: string;
        },
      ) =>
        withApi(opts, async (api) => {
          const identity = answered(
            await api.createIdentity({
              kind: opts.kind,
              voiceprintIds: idList(opts.voiceprints),
              name: opts.name,
              accountRef: opts.account,
              reason: opts.reason,
            }),
          );
          printChange(identity, opts, `created ${identity.id}`);
        }),
    );

  withChangeOptions(identities.command('merge'), true)
    .description('merge identities into <id>: their voiceprints move there, they are retired')
    .argument('<id>', 'the identity that stays')
    .requiredOption('--from <ids...>', 'the identities merged into it (space- or comma-separated)')
    .action((id: string, opts: ChangeOptions & { from: string[] }) =>
      withApi(opts, async (api) => {
        const identity = answered(await api.mergeIdentities(id, { from: idList(opts.from), reason: opts.reason }));
        printChange(identity, opts, `merged ${idList(opts.from).join(', ')} into ${identity.id}`);
      }),
    );

  withChangeOptions(identities.command('split'), true)
    .description('split voiceprints off <id> into a new identity of the same kind')
    .argument('<id>')
    .requiredOption('--voiceprints <ids...>', 'the voiceprints that go (space- or comma-separated)')
    .action((id: string, opts: ChangeOptions & { voiceprints: string[] }) =>
      withApi(opts, async (api) => {
        const identity = answered(
          await api.splitIdentity(id, { voiceprintIds: idList(opts.voiceprints), reason: opts.reason }),
        );
        printChange(identity, opts, `split ${identity.voiceprintCount} voiceprints off ${id} into ${identity.id}`);
      }),
    );

  withChangeOptions(identities.command('move'), true)
    .description('move voiceprints into <id>, from any identity or none')
    .argument('<id>')
    .requiredOption('--voiceprints <ids...>', 'the voiceprints that move (space- or comma-separated)')
    .action((id: string, opts: ChangeOptions & { voiceprints: string[] }) =>
      withApi(opts, async (api) => {
        const voiceprintIds = idList(opts.voiceprints);
        const identity = answered(await api.moveVoiceprints(id, { voiceprintIds, reason: opts.reason }));
        printChange(identity, opts, `moved ${voiceprintIds.length} voiceprints into ${identity.id}`);
      }),
    );
}

function withChangeOptions(command: Command, reasonRequired = false): Command {
  const withApi = withApiOptions(command, IDENTITY_KEY_HELP).option('--json', 'the identity afterwards as JSON');
  return reasonRequired
    ? withApi.requiredOption('--reason <text>', 'why (kept in the history)')
    : withApi.option('--reason <text>', 'why (kept in the history)');
}

function printChange(identity: IdentityResponse, opts: Output, summary: string) {
  if (opts.json) {
    out(JSON.stringify(identity));
    return;
  }
  out(summary);
  printIdentity(identity);
}

function printIdentity(identity: IdentityResponse) {
  const state = identity.mergedInto
    ? `merged into ${identity.mergedInto}`
    : identity.retiredAt
      ? `retired ${identity.retiredAt}`
      : 'live';
  for (const [label, value] of [
    ['id', identity.id],
    ['kind', identity.kind],
    ['name', identity.name ?? '-'],
    ['state', state],
    ['accounts', identity.accountRefs.join(', ') || '-'],
    ['voiceprints', String(identity.voiceprintCount)],
    ['recordings', String(identity.recordingCount)],
    ['first seen', identity.firstSeenAt],
    ['last seen', identity.lastSeenAt],
    ['watchlisted', identity.watchlisted ? 'yes' : 'no'],
    [
      'origin',
      identity.analystEditedAt
        ? `${identity.origin}, edited by an analyst ${identity.analystEditedAt}`
        : identity.origin,
    ],
  ] as const) {
    out(`${`${label}:`.padEnd(13)}${value}`);
  }
  if (identity.nearest.length > 0) {
    out('nearest:');
    for (const line of table(
      ['IDENTITY', 'SIMILARITY'],
      identity.nearest.map((n) => [n.identityId, n.similarity.toFixed(3)]),
    )) {
      out(`  ${line}`);
    }
  }
}
