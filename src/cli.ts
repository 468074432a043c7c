// The entry point of every voxtrace command, and the only module whose import does something.
// Resolution hooks apply only to modules resolved after they are registered, and a module's static
// imports are all resolved before its code runs: so the hooks come first and the commands after.
import './module-hooks.ts';

const { main } = await import('./commands/main.ts');
await main(process.argv);
