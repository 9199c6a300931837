/**
 * The fence port: how host HA makes sure a silent host runs nothing before its VMs are started
 * elsewhere. A fence is *confirmed* or it has not happened: a driver answers `fenced` only when
 * the host can no longer run guests (its power is off, or it has killed them itself), `pending`
 * when that will be true later (agent self-fencing: after its timeout), and throws when it could
 * not fence (the recovery then restarts nothing, says why, and tries again).
 * Drivers are chosen per host in `registry.ts`; node.ts builds them.
 */
import type { HostAddress } from '../port.js';

export interface IpmiCredentials {
  address: string;
  username: string;
  password: string;
}

export interface FenceTarget extends HostAddress {
  /** the host's IPMI BMC, when it has one (host_fence_credentials) */
  ipmi?: IpmiCredentials;
  /** when the fence of this silence began (journaled: the same across retries and crashes) */
  silentSince: Date;
}

export type FenceOutcome =
  | { state: 'fenced'; method: FenceMethod; detail: string }
  | { state: 'pending'; method: FenceMethod; detail: string; retryAfterMs: number };

export type FenceMethod = 'simulator' | 'ipmi' | 'agent-self-fence';

export interface FenceDriver {
  readonly method: FenceMethod;
  fence(target: FenceTarget): Promise<FenceOutcome>;
}
