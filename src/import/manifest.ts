import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';
import { isoInstant } from '../recordings/queries.ts';

/**
 * An import manifest: JSON lines `{file, accountRef?, channel?, callAt?, meta?}`, one results
 * document each with the context of its call. `file` is absolute or relative to the manifest's
 * folder; `callAt` is what an upload's `callAt` is (ISO-8601 with a time zone, or a date); `meta` a
 * JSON object stored as it is. Blank lines are skipped.
 */

export const MANIFEST_FIELDS = ['file', 'accountRef', 'channel', 'callAt', 'meta'] as const;

/** One line of the manifest that can be imported. */
export type ManifestEntry = {
  line: number;
  /** The document's path, resolved against the manifest's folder. */
  file: string;
  accountRef?: string;
  channel?: string;
  callAt?: Date;
  meta?: Record<string, unknown>;
};

/** A line that cannot: its number, the file it names when it names one, and why. */
export type ManifestRejection = { line: number; file: string | null; error: string };

const text = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');

const lineSchema = z
  .object({
    file: z.string({ error: 'required: the path of a results document' }).trim().min(1, 'must not be empty'),
    accountRef: text.nullish(),
    channel: text.nullish(),
    callAt: isoInstant.nullish(),
    meta: z.record(z.string(), z.unknown(), { error: 'must be a JSON object ({"key": "value"})' }).nullish(),
  })
  .strict();

/**
 * The manifest's lines, each an entry or a rejection (in line order); throws InvalidInputError when
 * the manifest itself cannot be read.
 * @example const { entries, rejected } = await readManifest('calls/manifest.jsonl');
 */
export async function readManifest(manifestFile: string): Promise<{
  entries: ManifestEntry[];
  rejected: ManifestRejection[];
}> {
  let content: string;
  try {
    content = await fs.readFile(manifestFile, 'utf8');
  } catch (error) {
    throw new InvalidInputError(`cannot read the manifest ${manifestFile}: ${(error as Error).message}`);
  }
  const folder = path.dirname(path.resolve(manifestFile));
  const entries: ManifestEntry[] = [];
  const rejected: ManifestRejection[] = [];
  content.split(/\r?\n/).forEach((raw, index) => {
    if (raw.trim() === '') return;
    const parsed = parseManifestLine(raw, index + 1, folder);
    if ('error' in parsed) rejected.push(parsed);
    else entries.push(parsed);
  });
  return { entries, rejected };
}

/** One line of a manifest in `folder`: an entry, or a rejection naming every wrong field. */
export function parseManifestLine(raw: string, line: number, folder: string): ManifestEntry | ManifestRejection {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    return { line, file: null, error: `manifest line ${line}: not valid JSON: ${(error as Error).message}` };
  }
  const named = (json as { file?: unknown } | null)?.file;
  const file = typeof named === 'string' && named.trim() ? path.resolve(folder, named.trim()) : null;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { line, file, error: `manifest line ${line}: must be a JSON object {${MANIFEST_FIELDS.join(', ')}}` };
  }
  const result = lineSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}; a line takes ${MANIFEST_FIELDS.join(', ')}`;
      }
      return `${issue.path.map(String).join('.') || 'line'}: ${issue.message}`;
    });
    return { line, file, error: `manifest line ${line}: ${problems.join('; ')}` };
  }
  const { accountRef, channel, callAt, meta } = result.data;
  return {
    line,
    file: path.resolve(folder, result.data.file),
    ...(accountRef != null ? { accountRef } : {}),
    ...(channel != null ? { channel } : {}),
    ...(callAt != null ? { callAt } : {}),
    ...(meta != null ? { meta } : {}),
  };
}
