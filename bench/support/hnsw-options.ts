/**
 * `--index-with m=24,ef_construction=128`: HNSW storage parameters for a build other than the
 * migration's, as the text of a `WITH (…)` clause; null when none are given. A part it cannot read
 * goes to the bench's own `fail`, named.
 */
export function parseIndexWith(text: string | undefined, fail: (message: string) => never): string | null {
  if (!text) return null;
  const parts = text.split(',').map((part) => part.trim());
  for (const part of parts) {
    if (!/^(m|ef_construction)\s*=\s*\d+$/.test(part)) {
      fail(`--index-with: expected m=N and/or ef_construction=N separated by commas, got "${part}"`);
    }
  }
  return parts.join(', ');
}

/** the trailing `WITH (…)` of a `pg_get_indexdef` definition, its parameters captured */
const WITH_CLAUSE = /\s+WITH\s*\((.*)\)\s*$/i;

/**
 * The migration's index definition (`pg_get_indexdef`) with its `WITH (…)` replaced by `indexWith`,
 * or as it is when none is given.
 * @example withIndexOptions('CREATE INDEX x ON t USING hnsw (e halfvec_cosine_ops) WITH (m=32)', 'm=16') // '… WITH (m=16)'
 */
export function withIndexOptions(definition: string, indexWith: string | null): string {
  if (!indexWith) return definition;
  return `${definition.replace(WITH_CLAUSE, '')} WITH (${indexWith})`;
}

/**
 * The `WITH (…)` parameters of an index definition, as `m='32', ef_construction='128'`; null when it
 * has none (pgvector's defaults).
 * @example indexOptionsOf("CREATE INDEX x ON t USING hnsw (e halfvec_cosine_ops) WITH (m='32')") // "m='32'"
 */
export function indexOptionsOf(definition: string): string | null {
  return WITH_CLAUSE.exec(definition)?.[1] ?? null;
}
