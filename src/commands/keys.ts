import { type Command, Option } from 'commander';
import { CLI_ACTOR } from '../audit/audit.ts';
import { type ApiKeyScope, apiKeyScopes } from '../db/schema.ts';
import { createApiKey, listApiKeys, revokeApiKey } from '../keys/keys.ts';
import { out, withContext } from './support.ts';

export function registerKeys(program: Command) {
  const keys = program.command('keys').description('manage API keys (scopes read ⊂ write ⊂ admin)');
  keys
    .command('create')
    .description('create a key and print it (only the key, on stdout)')
    .addOption(new Option('--scope <scope>', 'read, write or admin').choices(apiKeyScopes).makeOptionMandatory())
    .option('--name <name>', 'a name to tell the key apart')
    .action((opts: { scope: ApiKeyScope; name?: string }) =>
      withContext(async (ctx) => {
        const { key } = await createApiKey(ctx.db, { scope: opts.scope, name: opts.name }, CLI_ACTOR);
        out(key);
      }),
    );
  keys
    .command('ls')
    .description('list keys: id, name, scope, createdAt, revokedAt')
    .option('--json', 'a JSON array')
    .action((opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const list = await listApiKeys(ctx.db, CLI_ACTOR);
        if (opts.json) out(JSON.stringify(list));
        else if (list.length === 0) out('no API keys');
        else
          for (const k of list) {
            out(
              `${k.id}  ${k.scope.padEnd(5)}  ${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}  ${k.createdAt}  ${k.name}`,
            );
          }
      }),
    );
  keys
    .command('revoke')
    .description('revoke a key by its id or by the key itself')
    .argument('<id-or-key>')
    .action((idOrKey: string) =>
      withContext(async (ctx) => {
        const revoked = await revokeApiKey(ctx.db, idOrKey, CLI_ACTOR);
        out(`revoked ${revoked.id} (${revoked.name}, ${revoked.scope})`);
      }),
    );
}
