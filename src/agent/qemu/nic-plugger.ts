/**
 * How the QEMU part gets a TAP for a VM NIC without knowing how networks are built: the network
 * part (src/agent/network, its `plugger`) implements this; main.ts wires it. Both calls are
 * idempotent. The TAP lives in the network namespace the agent runs in, which is also QEMU's.
 */
import type { NicSpec } from '../../contract/agent.js';

export interface NicPlugger {
  /** makes (or repairs) the NIC's TAP, plugged into `nic.bridgeName`; answers the TAP's name */
  ensureTap(nic: NicSpec): Promise<string>;
  /** deletes the NIC's TAP (a missing one is fine) */
  removeTap(nicUuid: string): Promise<void>;
}
