import { registerHooks } from 'node:module';

/**
 * Node 24 re-reads and re-parses a package's whole package.json for every module it resolves in
 * that package, to learn the module's format. drizzle-orm's package.json is 179 KB (its `exports`
 * map) and its ESM build ~300 modules: that alone cost every voxtrace process ~0.5 s of start-up
 * and ~230 MiB of resident memory that V8 kept after collecting the garbage (the worker idled at
 * 292 MiB; 123 MiB with this hook). drizzle-orm is `"type": "module"` with no nested package.json,
 * and its modules import each other by relative path with the `.js` extension, so those imports
 * resolve here to the file itself as an ES module, and Node's resolver handles everything else.
 */
const SHORT_CIRCUITED_PACKAGES = ['/node_modules/drizzle-orm/'];

registerHooks({
  resolve(specifier, context, nextResolve) {
    const parent = context.parentURL;
    if (
      parent?.startsWith('file:') &&
      (specifier.startsWith('./') || specifier.startsWith('../')) &&
      specifier.endsWith('.js') &&
      SHORT_CIRCUITED_PACKAGES.some((root) => parent.includes(root))
    ) {
      const url = new URL(specifier, parent);
      if (SHORT_CIRCUITED_PACKAGES.some((root) => url.pathname.includes(root))) {
        return { url: url.href, format: 'module', shortCircuit: true };
      }
    }
    return nextResolve(specifier, context);
  },
});
