/**
 * A task run every N milliseconds for the life of a node (reapers, reconcilers): a slow pass is
 * never overlapped by the next, the timer never keeps the process alive, and `stop` waits for the
 * pass in flight so a node shuts down without cutting one in half.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly everyMs: number,
    private readonly pass: () => Promise<unknown>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.pass()
        .catch(this.onError)
        .finally(() => {
          this.running = undefined;
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
