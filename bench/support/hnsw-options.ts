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
