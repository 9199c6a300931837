/**
 * Jobs waiting for a slot of their queue that another node holds (claimJob answered QUEUE_BUSY):
 * each waits until a job of that queue ends anywhere in the cluster — this node's own finishes
 * and the other nodes' job.state.changed events relayed by LISTEN/NOTIFY (cluster/relay.ts) — or
 * until `pollMs` passed, so a lost notification (a node that died between its commit and its
 * notify) costs a delay, never a job.
 */
export class QueueWake {
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(private readonly pollMs = 1000) {}

  /** Resolves once a job of `queueKey` ended (or after pollMs). */
  wait(queueKey: string): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(queueKey);
      if (!set) {
        set = new Set();
        this.waiting.set(queueKey, set);
      }
      const done = () => {
        clearTimeout(timer);
        const current = this.waiting.get(queueKey);
        current?.delete(done);
        if (current?.size === 0) this.waiting.delete(queueKey);
        resolve();
      };
      const timer = setTimeout(done, this.pollMs);
      timer.unref();
      set.add(done);
    });
  }

  /** A job of `queueKey` ended: its waiters try their claim again. */
  wake(queueKey: string): void {
    const set = this.waiting.get(queueKey);
    if (!set) return;
    for (const done of [...set]) done();
  }

  get size(): number {
    let n = 0;
    for (const set of this.waiting.values()) n += set.size;
    return n;
  }
}
