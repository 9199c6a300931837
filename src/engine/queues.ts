/**
 * Per-resource queues: tasks with the same key (`vm:<uuid>`) run in arrival order, at most
 * `parallelism(key)` at a time; different keys never wait for each other. No global lock.
 * These lanes order a node's own work; across the cluster the same limit holds through the
 * queue slots a job claims in the database (job-statements.ts claimJob, docs/cluster.md).
 */

export type Parallelism = (key: string) => number;

/** Parallelism by the key's kind prefix (`host:…` → hosts); 1 when the kind is not listed. */
export function parallelismByKind(table: Record<string, number>): Parallelism {
  return (key) => table[key.slice(0, key.indexOf(':'))] ?? 1;
}

interface Lane {
  running: number;
  waiting: Fifo<() => void>;
}

export class QueueSet {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly parallelism: Parallelism) {}

  /** How many tasks of `key` may run at once (in this node's lane, and cluster-wide). */
  limitOf(key: string): number {
    return this.parallelism(key);
  }

  /** Runs `task` when the key's lane has a free slot. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { running: 0, waiting: new Fifo() };
      this.lanes.set(key, lane);
    }
    if (lane.running >= this.parallelism(key)) {
      await new Promise<void>((resolve) => lane!.waiting.push(resolve));
    } else {
      lane.running++;
    }
    try {
      return await task();
    } finally {
      const next = lane.waiting.shift();
      if (next)
        next(); // hand the slot over directly: `running` stays the same
      else {
        lane.running--;
        if (lane.running === 0) this.lanes.delete(key);
      }
    }
  }

  /** Tasks waiting for a slot, summed over all keys (for /metrics). */
  depth(): { keys: number; waiting: number; running: number } {
    let waiting = 0;
    let running = 0;
    for (const lane of this.lanes.values()) {
      waiting += lane.waiting.length;
      running += lane.running;
    }
    return { keys: this.lanes.size, waiting, running };
  }
}

/**
 * A first-in first-out list whose take is O(1) however long it grows: `Array.shift` moves every
 * element, and a burst of 100,000 creates leaves that many jobs waiting for a running slot.
 */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head] as T;
    this.items[this.head++] = undefined as T; // let it be collected
    // drop the taken prefix once it is most of the array (amortised O(1))
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  get length(): number {
    return this.items.length - this.head;
  }
}

/** A counting semaphore: at most `limit` holders at once; waiters are served in arrival order. */
export class Slots {
  private used = 0;
  private readonly waiting = new Fifo<() => void>();

  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.used < this.limit) {
      this.used++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next)
      next(); // the slot passes straight to the next waiter
    else this.used--;
  }

  get queued(): number {
    return this.waiting.length;
  }
}
