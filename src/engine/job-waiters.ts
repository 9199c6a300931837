/**
 * Callers waiting for jobs to end (`?wait=true`, Engine.waitFor). A job of this node answers its
 * waiters when it finishes (`notify`); a job that runs on another node is answered when its end
 * arrives relayed (`remoteEnded`) or, should a notification be lost, by a poll of its row.
 */
import { isFinished, type JobRow } from './jobs.js';

/** a waiter for a job that runs on another node also looks at its row this often (lost notifications) */
const WAIT_POLL_MS = 5000;

export class JobWaiters {
  private readonly waiters = new Map<string, Array<(job: JobRow) => void>>();

  constructor(
    private readonly nodeId: string,
    private readonly load: (uuid: string) => Promise<JobRow | undefined>,
  ) {}

  /** Resolves with the job once finished, or with its current row after `timeoutMs`. */
  async waitFor(uuid: string, timeoutMs: number): Promise<JobRow | undefined> {
    let resolveFn: ((job: JobRow) => void) | undefined;
    const finished = new Promise<JobRow>((resolve) => {
      resolveFn = resolve;
      const list = this.waiters.get(uuid) ?? [];
      list.push(resolve);
      this.waiters.set(uuid, list);
    });
    try {
      const current = await this.load(uuid);
      if (!current || isFinished(current.state)) return current;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), timeoutMs);
      });
      // a job of another node: its end arrives relayed, or is seen by this poll (this node's
      // own jobs answer their waiters themselves)
      const poll =
        current.ownerNode === this.nodeId ? undefined : setInterval(() => this.reload(uuid), WAIT_POLL_MS);
      const job = await Promise.race([finished, timeout]);
      clearTimeout(timer);
      clearInterval(poll);
      return job ?? (await this.load(uuid));
    } finally {
      const list = this.waiters.get(uuid)?.filter((w) => w !== resolveFn);
      if (list && list.length > 0) this.waiters.set(uuid, list);
      else this.waiters.delete(uuid);
    }
  }

  /** a job that ran on another node ended (its event arrived relayed) */
  remoteEnded(uuid: string): void {
    if (this.waiters.has(uuid)) this.reload(uuid);
  }

  /** answers everyone waiting for this finished job */
  notify(job: JobRow): void {
    const list = this.waiters.get(job.uuid);
    if (!list) return;
    this.waiters.delete(job.uuid);
    for (const resolve of list) resolve(job);
  }

  private reload(uuid: string): void {
    void this.load(uuid)
      .then((row) => row && isFinished(row.state) && this.notify(row))
      .catch(() => {});
  }
}
