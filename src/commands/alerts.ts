import { type Command, Option } from 'commander';
import { alertStatuses, alertTypes } from '../db/schema.ts';
import { VoxtraceError } from '../errors.ts';
import { type ApiOptions, answered, table, withApi, withApiOptions } from './api-command.ts';
import { out } from './support.ts';

/** `voxtrace alerts ls|show|ack|dismiss`: what voxtrace raised, and an analyst's answer to it (through the API). */

const KEY_HELP = 'API key: read for ls/show, write for ack/dismiss (default: VOXTRACE_API_KEY)';
type Output = ApiOptions & { json?: boolean };

export function registerAlerts(program: Command) {
  const alerts = program.command('alerts').description('list alerts, acknowledge or dismiss them (through the API)');

  withApiOptions(alerts.command('ls'), KEY_HELP)
    .description('alerts, newest first')
    .addOption(new Option('--type <type>', 'only this type').choices([...alertTypes]))
    .addOption(new Option('--status <status>', 'only this status').choices([...alertStatuses]))
    .option('--account <ref>', 'only alerts about this account')
    .option('--identity <id>', 'only alerts about this identity')
    .option('--recording <id>', 'only alerts about this recording')
    .option('--from <instant>', 'raised at or after (ISO 8601)')
    .option('--to <instant>', 'raised at or before (ISO 8601)')
    .option('--limit <n>', 'at most this many (1–500)', '50')
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .option('--json', 'the page as JSON: {items, nextCursor}')
    .action(
      (
        opts: Output & {
          type?: string;
          status?: string;
          account?: string;
          identity?: string;
          recording?: string;
          from?: string;
          to?: string;
          limit: string;
          cursor?: string;
        },
      ) =>
        withApi(opts, async (api) => {
          if (!/^\d+$/.test(opts.limit)) throw new VoxtraceError('--limit must be a whole number from 1 to 500');
          const page = answered(
            await api.listAlerts({
              type: opts.type,
              status: opts.status,
              accountRef: opts.account,
              identityId: opts.identity,
              recordingId: opts.recording,
              from: opts.from,
              to: opts.to,
              limit: Number(opts.limit),
              cursor: opts.cursor,
            }),
          );
          if (opts.json) {
            out(JSON.stringify(page));
            return;
          }
          if (page.items.length === 0) {
            out('no alerts');
            return;
          }
          for (const line of table(
            ['ID', 'TYPE', 'STATUS', 'RAISED', 'IDENTITY', 'ACCOUNTS', 'RECORDINGS', 'BEST'],
            page.items.map((a) => [
              a.id,
              a.type,
              a.status,
              a.createdAt,
              a.identityId ?? a.clusterId ?? '-',
              a.accountRefs.join(',') || '-',
              String(a.recordingIds.length),
              a.evidence.length ? Math.max(...a.evidence.map((e) => e.similarity)).toFixed(3) : '-',
            ]),
          )) {
            out(line);
          }
          if (page.nextCursor) out(`more: --cursor ${page.nextCursor}`);
        }),
    );

  withApiOptions(alerts.command('show'), KEY_HELP)
    .description('one alert with its evidence and history')
    .argument('<id>')
    .option('--json', 'as JSON')
    .action((id: string, opts: Output) =>
      withApi(opts, async (api) => {
        const alert = answered(await api.getAlert(id));
        if (opts.json) {
          out(JSON.stringify(alert));
          return;
        }
        out(`${alert.type} ${alert.id}: ${alert.status} (raised ${alert.createdAt}, updated ${alert.updatedAt})`);
        if (alert.identityId) out(`identity: ${alert.identityId}`);
        out(`accounts: ${alert.accountRefs.join(', ') || '-'}`);
        out('evidence:');
        for (const line of table(
          ['RECORDING', 'VOICEPRINT', 'SIMILARITY', 'SCORE'],
          alert.evidence.map((e) => [
            e.recordingId,
            e.voiceprintId ?? e.utteranceId ?? '-',
            e.similarity.toFixed(3),
            e.score?.toFixed(2) ?? '-',
          ]),
        )) {
          out(`  ${line}`);
        }
        out('history:');
        for (const h of alert.history) {
          out(
            `  ${h.createdAt} ${h.action} → ${h.status}${h.keyId ? ` (key ${h.keyId})` : ''}${h.note ? `: ${h.note}` : ''}`,
          );
        }
      }),
    );

  for (const action of ['ack', 'dismiss'] as const) {
    withApiOptions(alerts.command(action), KEY_HELP)
      .description(action === 'ack' ? 'acknowledge an open alert (being worked on)' : 'dismiss an alert (closed)')
      .argument('<id>')
      .option('--note <text>', 'what was found (kept in its history)')
      .option('--json', 'the alert afterwards as JSON')
      .action((id: string, opts: Output & { note?: string }) =>
        withApi(opts, async (api) => {
          const alert = answered(await api.changeAlert(id, action, opts.note));
          if (opts.json) {
            out(JSON.stringify(alert));
            return;
          }
          out(`alert ${alert.id}: ${alert.status}`);
        }),
      );
  }
}
