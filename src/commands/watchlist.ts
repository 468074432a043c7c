import type { Command } from 'commander';
import { type ApiOptions, allPages, answered, table, withApi, withApiOptions } from './api-command.ts';
import { out } from './support.ts';

/**
 * `voxtrace watchlist add|rm|ls`: the fraudster watchlist, through the API (so that it works while
 * `start` holds the embedded database, and every change carries the key that made it).
 */

const KEY_HELP = 'API key: read for ls, write for add/rm (default: VOXTRACE_API_KEY)';
type Output = ApiOptions & { json?: boolean };

export function registerWatchlist(program: Command) {
  const watchlist = program
    .command('watchlist')
    .description('the fraudster watchlist: list a voice (with a look-back over history), take it off, show it');

  withApiOptions(watchlist.command('add'), KEY_HELP)
    .description('list a fraudster voice, by voiceprint or identity; answers once every stored recording was checked')
    .option('--voiceprint <id>', 'the voiceprint of a call the fraud was confirmed on')
    .option('--identity <id>', 'an identity (unknown or fraudster)')
    .requiredOption('--reason <text>', 'why it is listed (kept with the entry)')
    .option('--name <name>', 'a name to show for the identity')
    .option('--json', 'the entry as JSON')
    .action((opts: Output & { voiceprint?: string; identity?: string; reason: string; name?: string }) =>
      withApi(opts, async (api) => {
        const entry = answered(
          await api.addToWatchlist({
            ...(opts.voiceprint ? { voiceprintId: opts.voiceprint } : {}),
            ...(opts.identity ? { identityId: opts.identity } : {}),
            reason: opts.reason,
            ...(opts.name ? { name: opts.name } : {}),
          }),
        );
        if (opts.json) {
          out(JSON.stringify(entry));
          return;
        }
        out(`listed identity ${entry.identityId} (entry ${entry.id}, ${entry.createdAt})`);
        out(`look-back: ${entry.lookBack.checked} voiceprints compared, ${entry.lookBack.hits} recordings alerted`);
      }),
    );

  withApiOptions(watchlist.command('rm'), KEY_HELP)
    .description('take an identity off the watchlist: it returns to unknown, its open hits are dismissed')
    .argument('<identityId>')
    .option('--reason <text>', 'why (the note of the dismissed hits)')
    .action((identityId: string, opts: ApiOptions & { reason?: string }) =>
      withApi(opts, async (api) => {
        answered(await api.removeFromWatchlist(identityId, opts.reason));
        out(`removed identity ${identityId} from the watchlist`);
      }),
    );

  withApiOptions(watchlist.command('ls'), KEY_HELP)
    .description('the watchlist, newest entry first')
    .option('--json', 'the entries as a JSON array')
    .action((opts: Output) =>
      withApi(opts, async (api) => {
        const entries = await allPages((cursor) => api.listWatchlist(cursor));
        if (opts.json) {
          out(JSON.stringify(entries));
          return;
        }
        if (entries.length === 0) {
          out('the watchlist is empty');
          return;
        }
        for (const line of table(
          ['IDENTITY', 'NAME', 'LISTED AT', 'LOOK-BACK HITS', 'REASON'],
          entries.map((e) => [e.identityId, e.name ?? '', e.createdAt, String(e.lookBack.hits), e.reason]),
        )) {
          out(line);
        }
      }),
    );
}
