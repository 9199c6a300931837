/**
 * A task run every N milliseconds for the life of a node (reapers, reconcilers): a slow pass is
 * never overlapped by the next, the timer never keeps the process alive, and `stop` waits for the
 * pass in flight so a node shuts down without cutting one in half.
 *
 * With `maxShare` (0–1), a pass whose work grows with the inventory (the reconciler asks every
 * host) takes at most that share of the time: after a pass of d ms the next waits until d/maxShare
 * has gone by since it began, so at 10,000 hosts passes come less often instead of filling the
 * node's time.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** no pass before this time (ms since the epoch): set after a long pass under `maxShare` */
  private notBefore = 0;

  constructor(
    private readonly everyMs: number,
    private readonly pass: () => Promise<unknown>,
    private readonly onError: (err: unknown) => void = () => {},
    private readonly maxShare = 1,
  ) {}

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => {
      if (this.running || Date.now() < this.notBefore) return;
      const began = Date.now();
      this.running = this.pass()
        .catch(this.onError)
        .finally(() => {
          this.running = undefined;
          this.notBefore = began + (Date.now() - began) / this.maxShare;
        });
    }, this.everyMs);
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
