import fs from 'node:fs';
import path from 'node:path';

const README_HEADER = `# Benchmarks

Run each from the repo root with Node 24 (\`export PATH=$PWD/.voxtrace/node/bin:$PATH\` if the
system Node is older), e.g. \`node bench/import.ts\`; the first lines of each script list its
options. Native PostgreSQL is the server of \`$BENCH_DATABASE_URL\`, else
\`postgres://postgres@127.0.0.1:5432\`; each benchmark creates and drops its own database there.

Each run writes \`bench/results/<name>.json\` (\`{name, date, command, machine, figures}\`) and
replaces its line below. Numbers come from one run on a shared 2-core machine: compare them as
ratios within a run (e.g. PGlite ÷ PostgreSQL), not across runs or machines.
`;

/**
 * Writes `bench/results/<name>.json` in the CONVENTIONS.md format and replaces the benchmark's line
 * in bench/README.md (`- <name>: <date> — <summary> — \`<command>\``).
 * @example recordResult(benchDir, { name: 'import', command, machine, figures, summary: '342 utterances/s' });
 */
export function recordResult(
  benchDir: string,
  input: {
    name: string;
    command: string;
    machine: unknown;
    figures: Record<string, unknown>;
    summary: string;
    /** when the figures were measured, if not now (a result judged again keeps its run's date) */
    date?: string;
  },
): { file: string; date: string } {
  const date = input.date ?? new Date().toISOString();
  const result = { name: input.name, date, command: input.command, machine: input.machine, figures: input.figures };
  fs.mkdirSync(path.join(benchDir, 'results'), { recursive: true });
  const file = path.join(benchDir, 'results', `${input.name}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

  const readme = path.join(benchDir, 'README.md');
  const lines = (fs.existsSync(readme) ? fs.readFileSync(readme, 'utf8') : README_HEADER).trimEnd().split('\n');
  const line = `- ${input.name}: ${date.slice(0, 10)} — ${input.summary} — \`${input.command}\``;
  const index = lines.findIndex((l) => l.startsWith(`- ${input.name}:`));
  if (index >= 0) lines[index] = line;
  else {
    // after the last line of the list of results (the first run of `- ` lines), not at the end
    const first = lines.findIndex((l) => l.startsWith('- '));
    let end = first;
    while (end >= 0 && end < lines.length && lines[end]?.startsWith('- ')) end++;
    if (first < 0) lines.push('', line);
    else lines.splice(end, 0, line);
  }
  fs.writeFileSync(readme, `${lines.join('\n')}\n`);
  return { file, date };
}
