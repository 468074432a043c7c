import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The spool: uploaded audio waiting for the worker, in `$VOXTRACE_DATA_DIR/spool/`.
 *
 * - `<recordingId>.<wav|mp3>`: the audio of one recording; the row's `spool_file` holds this
 *   name (relative, so the data directory can move).
 * - `.upload-<uuid>.part`: an upload still streaming in. It becomes a recording file by an
 *   atomic rename in the same directory, so the worker never sees half a file.
 */
export type AudioFormat = 'wav' | 'mp3';

const RECORDING_FILE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(wav|mp3)$/;
const TEMP_PREFIX = '.upload-';
const TEMP_SUFFIX = '.part';

/**
 * The spool directory of a data directory.
 * @example const spoolDir = spoolDirFor(config.dataDir); // '/srv/voxtrace/spool'
 */
export function spoolDirFor(dataDir: string): string {
  return path.join(dataDir, 'spool');
}

/**
 * Creates the spool directory (and its parents) when missing; cheap enough to call per upload.
 * @example await ensureSpoolDir(spoolDir);
 */
export async function ensureSpoolDir(spoolDir: string): Promise<void> {
  await fs.mkdir(spoolDir, { recursive: true });
}

/**
 * The `spool_file` name of a recording's audio.
 * @example spoolFileName('0b5e…', 'wav'); // '0b5e….wav'
 */
export function spoolFileName(recordingId: string, format: AudioFormat): string {
  return `${recordingId}.${format}`;
}

/**
 * The absolute path of a row's `spool_file`. Throws for anything but a name this module gives
 * out: the value comes from the database, and must never point outside the spool.
 * @example const file = spoolPath(spoolDir, recording.spoolFile); // '/srv/voxtrace/spool/0b5e….wav'
 */
export function spoolPath(spoolDir: string, spoolFile: string): string {
  if (!RECORDING_FILE.test(spoolFile)) throw new Error(`"${spoolFile}" is not a spool file name`);
  return path.join(spoolDir, spoolFile);
}

/**
 * True when a recording's spooled audio is on disk.
 * @example if (!(await spoolFileExists(spoolDir, recording.spoolFile))) fail('audio gone');
 */
export async function spoolFileExists(spoolDir: string, spoolFile: string): Promise<boolean> {
  try {
    return (await fs.stat(spoolPath(spoolDir, spoolFile))).isFile();
  } catch {
    return false;
  }
}

/**
 * Deletes a recording's spooled audio; a file already gone is fine (the worker calls this after
 * storing the results, unless VOXTRACE_KEEP_AUDIO).
 * @example await removeSpoolFile(spoolDir, recording.spoolFile);
 */
export async function removeSpoolFile(spoolDir: string, spoolFile: string): Promise<void> {
  await fs.rm(spoolPath(spoolDir, spoolFile), { force: true });
}

/**
 * The recording ids of the audio files in the spool (`<recordingId>.<wav|mp3>`), by file name;
 * uploads still streaming in and anything else are not listed. Empty when there is no spool yet.
 * @example for (const [file, recordingId] of await listRecordingFiles(spoolDir)) …
 */
export async function listRecordingFiles(spoolDir: string): Promise<Map<string, string>> {
  const names = await fs.readdir(spoolDir).catch(() => [] as string[]);
  return new Map(names.filter((name) => RECORDING_FILE.test(name)).map((name) => [name, path.parse(name).name]));
}

/**
 * When a spool file was last written, in ms since the epoch; null when it is gone.
 * @example const mtime = await spoolFileMtime(spoolDir, file);
 */
export async function spoolFileMtime(spoolDir: string, spoolFile: string): Promise<number | null> {
  const stat = await fs.stat(spoolPath(spoolDir, spoolFile)).catch(() => null);
  return stat ? stat.mtimeMs : null;
}

/**
 * A new, unique path for an upload while it streams in. The dot prefix and `.part` suffix keep it
 * apart from recording files, so sweeps that look for `<uuid>.<format>` never touch it.
 * @example const temp = tempUploadPath(spoolDir); // '/srv/voxtrace/spool/.upload-6f1c….part'
 */
export function tempUploadPath(spoolDir: string): string {
  return path.join(spoolDir, `${TEMP_PREFIX}${randomUUID()}${TEMP_SUFFIX}`);
}

/**
 * Deletes uploads that stopped streaming more than `olderThanMs` ago: a process killed
 * mid-upload leaves its `.part` file behind (nothing in the database points at it).
 * Returns the names removed.
 * @example await removeAbandonedUploads(spoolDir, { olderThanMs: 3_600_000 });
 */
export async function removeAbandonedUploads(spoolDir: string, options: { olderThanMs: number }): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(spoolDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const cutoff = Date.now() - options.olderThanMs;
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX) || !name.endsWith(TEMP_SUFFIX)) continue;
    const file = path.join(spoolDir, name);
    const stat = await fs.stat(file).catch(() => null);
    if (stat && stat.mtimeMs < cutoff) {
      await fs.rm(file, { force: true });
      removed.push(name);
    }
  }
  return removed;
}
