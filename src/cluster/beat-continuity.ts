/**
 * Whether a node may judge other nodes silent (membership.ts): only after its own heartbeats have
 * succeeded without a break for dead-after. When the database was away — a failover, a restart —
 * every node's heartbeat is old at once, and the first node back must not fence the others for a
 * silence that was the database's: it waits until they had dead-after to beat again, as it did.
 * A beat that failed is a break; so is a gap longer than half of dead-after between two beats
 * that succeeded (this process was frozen, or a beat hung).
 */
export class BeatContinuity {
  private since: number | undefined;
  private last = 0;

  constructor(private readonly deadAfterMs: number) {}

  private get maxGapMs(): number {
    return this.deadAfterMs / 2;
  }

  succeeded(now = Date.now()): void {
    if (this.since === undefined || now - this.last > this.maxGapMs) this.since = now;
    this.last = now;
  }

  failed(): void {
    this.since = undefined;
  }

  /** Beating without a break for dead-after, up to now. */
  mayJudgeSilence(now = Date.now()): boolean {
    return (
      this.since !== undefined && now - this.since >= this.deadAfterMs && now - this.last <= this.maxGapMs
    );
  }
}
