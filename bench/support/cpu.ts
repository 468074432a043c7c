import fs from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime (+ reaped children's, when asked) of one process, in seconds; 0 once it is gone. */
function processCpuSeconds(pid: number, withChildren = false): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesised command name; utime is field 14 of stat(5), so index 11 here
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    const children = withChildren ? Number(fields[13]) + Number(fields[14]) : 0;
    return (own + children) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU seconds of every PostgreSQL server process, including backends that have exited (reaped by the postmaster). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      const pid = Number(entry);
      const ppid = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      const isPostmaster = fs.readFileSync(`/proc/${ppid}/comm`, 'utf8').trim() !== 'postgres';
      total += processCpuSeconds(pid, isPostmaster);
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

/** CPU time the hypervisor gave other guests while this one wanted it (the `steal` column of /proc/stat), in seconds. */
function stealSeconds(): number {
  try {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/) ?? [];
    return Number(fields[8] ?? 0) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/**
 * Where the CPU went during a run: seconds per named role (summed over its processes) and for the
 * PostgreSQL server. Processes are sampled every second, so one that exits during the run keeps
 * its last reading.
 */
export function cpuAccount(roles: Record<string, () => number[]>) {
  const lastSeen = new Map<number, number>();
  const postgresBefore = postgresCpuSeconds();
  const stealBefore = stealSeconds();
  const sample = () => {
    for (const pids of Object.values(roles)) {
      for (const pid of pids()) {
        const seconds = processCpuSeconds(pid);
        if (seconds > 0) lastSeen.set(pid, seconds);
      }
    }
  };
  sample();
  const before = new Map(lastSeen);
  const timer = setInterval(sample, 1000);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    stop(): Record<string, number> {
      clearInterval(timer);
      sample();
      const seconds: Record<string, number> = { postgres: round(postgresCpuSeconds() - postgresBefore) };
      for (const [role, pids] of Object.entries(roles)) {
        seconds[role] = round(pids().reduce((sum, pid) => sum + (lastSeen.get(pid) ?? 0) - (before.get(pid) ?? 0), 0));
      }
      // on a shared VM: time taken by other guests; a run with much of it is slower for no fault of voxtrace
      seconds.stolenByHypervisor = round(stealSeconds() - stealBefore);
      return seconds;
    },
  };
}
