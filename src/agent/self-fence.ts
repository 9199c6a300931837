/**
 * Agent self-fencing (host HA without a BMC): a host that has lost the management nodes kills
 * its own guests, so that the management side, which restarts them elsewhere once the host has
 * been silent for the same time plus a margin (drivers/fence/agent-self-fence.ts), never has
 * them running twice on shared disks.
 *
 * Contact: every authenticated command from a management node (a peer agent's migration
 * command does not count). Storage lease (`--self-fence-lease FILE`, optional): a small file on
 * the shared storage the agent rewrites every check; a write that fails or does not finish
 * within the check interval (a hung NFS mount) is a lost renewal. The guests are killed when
 * there has been no contact for `--self-fence-after` seconds AND, with a lease file, no lease
 * renewal for as long either: a host cut off from the management network but still reaching
 * its storage keeps its guests (docs/hosts.md explains when to use which). Once fenced it waits
 * for contact again before it may fence again; it never restarts a guest itself.
 */
import { writeFile } from 'node:fs/promises';

export interface SelfFenceLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Renews the storage lease; rejects (or never settles) when the storage cannot be written. */
export type LeaseRenewal = () => Promise<void>;

/** A lease file on the shared storage, rewritten with this host's name and the time. */
export function fileLease(path: string, holder: string): LeaseRenewal {
  return () => writeFile(path, `${JSON.stringify({ holder, renewedAt: new Date().toISOString() })}\n`);
}

export interface SelfFenceOptions {
  /** silence (and lease loss) after which the guests are killed, ms */
  afterMs: number;
  /** how often contact and lease are checked (and the lease renewed), ms */
  checkEveryMs: number;
  /** absent: contact alone decides */
  lease?: LeaseRenewal;
  /** kills every guest of this host; answers how many were killed */
  killGuests: () => Promise<number>;
  log: SelfFenceLog;
  now?: () => number;
}

export class SelfFence {
  private lastContact: number;
  private lastLease: number;
  private fenced = false;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly o: SelfFenceOptions) {
    this.now = o.now ?? Date.now;
    // a starting agent counts as in contact: it is given the whole time before it may fence
    this.lastContact = this.now();
    this.lastLease = this.now();
  }

  /** a management node reached this agent */
  contact(): void {
    this.lastContact = this.now();
    if (this.fenced) {
      this.fenced = false;
      this.o.log.info({}, 'self-fence: the management nodes reach this host again; armed again');
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.o.checkEveryMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One check: renews the lease, and kills the guests when contact and lease are both lost too long. */
  check(): Promise<void> {
    this.checking ??= this.pass().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  get isFenced(): boolean {
    return this.fenced;
  }

  private async pass(): Promise<void> {
    if (this.o.lease) await this.renew(this.o.lease);
    if (this.fenced) return;
    const now = this.now();
    const silent = now - this.lastContact;
    const leaseLost = this.o.lease ? now - this.lastLease : silent;
    if (silent < this.o.afterMs || leaseLost < this.o.afterMs) return;
    this.fenced = true;
    this.o.log.error(
      { silentMs: silent, leaseLostMs: this.o.lease ? leaseLost : undefined },
      'self-fence: no management node and no storage lease for too long: killing every guest',
    );
    try {
      const killed = await this.o.killGuests();
      this.o.log.error({ killed }, 'self-fence: guests killed');
    } catch (err) {
      // tried again at the next check: a fence must not stay half-done
      this.fenced = false;
      this.o.log.error({ err: (err as Error).message }, 'self-fence: killing the guests failed');
    }
  }

  private async renew(lease: LeaseRenewal): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), this.o.checkEveryMs);
    });
    try {
      const outcome = await Promise.race([lease().then(() => 'renewed' as const), timeout]);
      if (outcome === 'renewed') this.lastLease = this.now();
      else this.o.log.warn({}, 'self-fence: the storage lease was not renewed in time');
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'self-fence: the storage lease could not be renewed');
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Kills every running or paused guest through the agent's own handlers (vm.list, then a forced vm.stop). */
export function killThroughHandlers(handlers: {
  'vm.list'?: (r: Record<string, never>) => Promise<{ vms: Array<{ uuid: string; state: string }> }>;
  'vm.stop'?: (r: { vmUuid: string; force: boolean }) => Promise<unknown>;
}): () => Promise<number> {
  return async () => {
    const list = handlers['vm.list'];
    const stop = handlers['vm.stop'];
    if (!list || !stop) return 0;
    const running = (await list({})).vms.filter((v) => v.state === 'Running' || v.state === 'Paused');
    const results = await Promise.allSettled(running.map((v) => stop({ vmUuid: v.uuid, force: true })));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0)
      throw new Error(
        `${failed.length} of ${running.length} guests could not be killed: ${(failed[0] as PromiseRejectedResult).reason}`,
      );
    return running.length;
  };
}
