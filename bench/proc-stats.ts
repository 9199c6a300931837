/**
 * What a process costs, read from /proc (Linux): CPU seconds (user + system), peak RSS, and the
 * CPU of a PostgreSQL server's processes — the embedded one as its postmaster and the postmaster's
 * children (backends, WAL writer, checkpointer, io workers …), an external one by
 * the backends serving one database (pg_stat_activity), sampled while they live.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';

let ticks: number | undefined;
/** clock ticks per second (CLK_TCK): /proc counts CPU time in them */
function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

interface Stat {
  parent: number;
  /** utime + stime, seconds */
  cpu: number;
  /** cutime + cstime: children this process waited for, seconds */
  children: number;
}

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone
  }
  // the command name (field 2) may hold spaces and parentheses: fields after its last ')'
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const t = clockTicks();
  // f[0] is field 3 (state): the parent is field 4, utime..cstime fields 14..17
  return {
    parent: Number(f[1]),
    cpu: (Number(f[11]) + Number(f[12])) / t,
    children: (Number(f[13]) + Number(f[14])) / t,
  };
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  return stat(pid)?.cpu ?? 0;
}

/** VmHWM: the process's peak resident set, MiB. */
export function peakRssMiB(pid: number): number {
  return statusField(pid, 'VmHWM');
}

/** VmRSS: the process's resident set now, MiB. */
export function rssMiB(pid: number): number {
  return statusField(pid, 'VmRSS');
}

function statusField(pid: number, field: string): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return line ? Number(line.split(/\s+/)[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of a postmaster and its children, plus what its exited children used (the
 * postmaster waits for its backends, so their time lands in its cutime/cstime). Each child calls
 * setsid, so they are found by their parent, not their session.
 */
export function serverCpuSeconds(postmasterPid: number): number {
  const own = stat(postmasterPid);
  let total = (own?.cpu ?? 0) + (own?.children ?? 0);
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === postmasterPid) continue;
    const s = stat(pid);
    if (s?.parent === postmasterPid) total += s.cpu;
  }
  return total;
}

/**
 * The CPU the backends of one database use between start() and stop(): sampled every 500 ms
 * (a backend that exits between two samples loses at most its last half second). The server's
 * shared processes (WAL writer, checkpointer) serve every database and are not counted.
 */
export class BackendCpu {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: pg.Client,
    private readonly database: string,
  ) {}

  async start(): Promise<void> {
    for (const pid of await this.pids()) this.first.set(pid, cpuSeconds(pid));
    this.timer = setInterval(() => void this.sample().catch(() => {}), 500);
  }

  async stop(): Promise<number> {
    clearInterval(this.timer);
    await this.sample();
    let total = 0;
    for (const [pid, cpu] of this.last) total += cpu - (this.first.get(pid) ?? 0);
    return total;
  }

  private async sample(): Promise<void> {
    for (const pid of await this.pids()) {
      const cpu = cpuSeconds(pid);
      if (cpu > 0) this.last.set(pid, cpu);
    }
  }

  private async pids(): Promise<number[]> {
    const r = await this.db.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [this.database],
    );
    return r.rows.map((row) => row.pid);
  }
}

/** The load average over the last minute (what `uptime` prints first). */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
