/**
 * One run at a time per key, with coalescing: a request arriving while a run is in flight is
 * served by the next run (one for all such requests), which starts after the current one ends —
 * so every caller waits for a run that started after its request, and a burst of N requests
 * costs at most two runs.
 */
export class SingleFlight {
  private readonly lanes = new Map<string, { running: Promise<void> | null; queued: Promise<void> | null }>();

  run(key: string, fn: () => Promise<void>): Promise<void> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { running: null, queued: null };
      this.lanes.set(key, lane);
    }
    const l = lane;
    const start = (): Promise<void> => {
      const p: Promise<void> = fn().finally(() => {
        if (l.running === p) l.running = null;
        if (!l.running && !l.queued && this.lanes.get(key) === l) this.lanes.delete(key);
      });
      l.running = p;
      return p;
    };
    if (!l.running) return start();
    if (!l.queued) {
      const ignore = () => {};
      l.queued = l.running.then(ignore, ignore).then(() => {
        l.queued = null;
        return start();
      });
    }
    return l.queued;
  }

  /** keys with a run in flight or queued (tests) */
  get size(): number {
    return this.lanes.size;
  }
}
