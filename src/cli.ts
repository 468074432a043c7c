// The entry point of every voxtrace command. Resolution hooks apply only to modules resolved after
// they are registered, and a module's static imports are all resolved before its code runs: so the
// hooks come first and the commands are loaded after them.
import './module-hooks.ts';

await import('./commands.ts');
