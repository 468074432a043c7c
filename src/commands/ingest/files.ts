import fs from 'node:fs';
import path from 'node:path';
import { VoxtraceError } from '../../errors.ts';

export type AudioFile = {
  path: string;
  /** The account the recording is stored under, or null when none was asked for. */
  accountRef: string | null;
  /** The file's modification time, ISO-8601: the best guess of when the call took place. */
  callAt: string;
};

const AUDIO_EXTENSIONS = new Set(['.wav', '.mp3']);

/**
 * The audio files under `paths`, sorted by path, each with its account and call time. Files named
 * on the command line are taken whatever their extension (the API checks the content); inside
 * directories only .wav/.mp3 (any case) are taken and the rest counted as skipped. Throws
 * VoxtraceError naming every path that does not exist.
 * @example const { files, skipped } = await findAudioFiles(['demo'], { accountFromDir: true });
 */
export async function findAudioFiles(
  paths: string[],
  account: { accountRef?: string; accountFromDir?: boolean } = {},
): Promise<{ files: AudioFile[]; skipped: number }> {
  const missing: string[] = [];
  const chosen = new Set<string>();
  let skipped = 0;
  for (const given of paths) {
    const stat = await fs.promises.stat(given).catch(() => null);
    if (!stat) {
      missing.push(given);
    } else if (stat.isDirectory()) {
      for (const file of await filesUnder(given)) {
        if (AUDIO_EXTENSIONS.has(path.extname(file).toLowerCase())) chosen.add(file);
        else skipped++;
      }
    } else {
      chosen.add(path.resolve(given));
    }
  }
  if (missing.length > 0) {
    throw new VoxtraceError(`no such file or directory: ${missing.join(', ')}`);
  }
  // code-unit order, not locale order: the same tree gives the same sequence on every machine
  const sorted = [...chosen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: AudioFile[] = [];
  for (const file of sorted) {
    const { mtime } = await fs.promises.stat(file);
    const accountRef = account.accountFromDir ? path.basename(path.dirname(file)) : (account.accountRef ?? null);
    files.push({ path: file, accountRef, callAt: mtime.toISOString() });
  }
  return { files, skipped };
}

/** Regular files below `dir` (absolute paths); symlinked files count, symlinked directories are not followed. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.promises.readdir(dir, { recursive: true, withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const full = path.resolve(entry.parentPath, entry.name);
    if (entry.isFile()) files.push(full);
    else if (entry.isSymbolicLink() && (await fs.promises.stat(full).catch(() => null))?.isFile()) files.push(full);
  }
  return files;
}
