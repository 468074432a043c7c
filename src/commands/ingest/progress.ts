import cliProgress from 'cli-progress';

export type ProgressStream = { write(text: string): unknown; isTTY?: boolean };

export type ProgressSnapshot = {
  phase: 'upload' | 'wait';
  /** Files uploaded or refused (upload), files whose recording finished (wait). */
  processed: number;
  total: number;
  queued: number;
  submitted: number;
  done: number;
  failed: number;
  /** Files refused at upload; shown within `failed`. */
  rejected: number;
};

export type ProgressDisplay = {
  update(snapshot: ProgressSnapshot, options?: { final?: boolean }): void;
  /** A line of its own (a rejected file) that must not be lost in the bar. */
  note(line: string): void;
  stop(): void;
};

/**
 * On a TTY a live bar (redrawn in place); otherwise a plain line at most every `intervalMs` or
 * on each 10 % step, and at the end of each phase, e.g.
 * `ingest: 120/500 uploaded (queued 80, submitted 0, done 40, failed 0), 35.2 files/s, eta 11 s`.
 * @example const display = createProgressDisplay(process.stderr); display.update(snapshot); display.stop();
 */
export function createProgressDisplay(
  stream: ProgressStream,
  options: { intervalMs?: number; now?: () => number } = {},
): ProgressDisplay {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 2000;
  let phase: ProgressSnapshot['phase'] | null = null;
  let phaseStart = { at: 0, processed: 0 };
  let lastLine = { at: 0, tenth: -1, processed: -1 };
  let bar: cliProgress.SingleBar | null = null;

  const figures = (s: ProgressSnapshot) => {
    const seconds = (now() - phaseStart.at) / 1000;
    const rate = seconds > 0 ? (s.processed - phaseStart.processed) / seconds : 0;
    const remaining = s.total - s.processed;
    const eta = remaining === 0 ? '0 s' : rate > 0 ? formatDuration(remaining / rate) : '?';
    return { rate: rate.toFixed(1), eta };
  };
  const verb = (p: ProgressSnapshot['phase']) => (p === 'upload' ? 'uploaded' : 'finished');

  return {
    update(s, updateOptions = {}) {
      if (s.phase !== phase) {
        bar?.stop();
        bar = null;
        phase = s.phase;
        phaseStart = { at: now(), processed: s.processed };
        lastLine = { at: 0, tenth: -1, processed: -1 };
      }
      const { rate, eta } = figures(s);
      const failed = s.failed + s.rejected;
      if (stream.isTTY) {
        const payload = { verb: verb(s.phase), ...s, failed, rate, etaText: eta };
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              stream: stream as NodeJS.WritableStream,
              format:
                'ingest [{bar}] {value}/{total} {verb} | queued {queued} submitted {submitted} done {done} ' +
                'failed {failed} | {rate} files/s | eta {etaText}',
              hideCursor: false,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(s.total, s.processed, payload);
        } else {
          bar.update(s.processed, payload);
        }
        if (updateOptions.final) {
          bar.stop();
          bar = null;
        }
        return;
      }
      if (s.total === 0) return; // nothing to upload or wait for: the summary says so
      const tenth = Math.floor((s.processed / s.total) * 10);
      const due =
        now() - lastLine.at >= intervalMs ||
        tenth > lastLine.tenth ||
        (updateOptions.final && s.processed !== lastLine.processed);
      if (!due) return;
      lastLine = { at: now(), tenth, processed: s.processed };
      stream.write(
        `ingest: ${s.processed}/${s.total} ${verb(s.phase)} (queued ${s.queued}, submitted ${s.submitted}, ` +
          `done ${s.done}, failed ${failed}), ${rate} files/s, eta ${eta}\n`,
      );
    },
    note(line) {
      // on a TTY: clear the bar's line first; the bar draws itself again below on its next update
      stream.write(stream.isTTY && bar ? `\r\x1b[2K${line}\n` : `${line}\n`);
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
