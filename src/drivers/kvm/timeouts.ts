/**
 * How long the management node waits for each agent command before it calls the host
 * unreachable. Short for the questions a healthy agent answers at once (the reconciler's
 * `vm.list`, `host.ping`), long for what moves bytes or waits on a guest: `vm.stop` waits for an
 * ACPI shutdown (the agent's --stop-timeout, 60 s by default) before it forces one, a migration
 * copies the guest's memory (and its disks with block migration), an image copy may be gigabytes.
 */
import type { AgentCommand } from '../../contract/agent.js';

const S = 1000;
const MIN = 60 * S;

export const DEFAULT_COMMAND_TIMEOUT_MS = 60 * S;

const BY_COMMAND: Partial<Record<AgentCommand | string, number>> = {
  'host.connect': 15 * S,
  'host.capacity': 15 * S,
  'host.ping': 10 * S,
  'vm.list': 15 * S,
  'vm.serial-log': 15 * S,
  'vm.start': 3 * MIN,
  'vm.stop': 3 * MIN,
  'vm.reboot': 3 * MIN,
  'vm.destroy': 2 * MIN,
  'vm.migrate': 30 * MIN,
  'vm.attach-volume': 2 * MIN,
  'vm.detach-volume': 2 * MIN,
  'image.cache': 60 * MIN,
  'image.upload': 60 * MIN,
  'volume.create': 10 * MIN,
  'snapshot.create': 10 * MIN,
  'snapshot.revert': 10 * MIN,
  'bs.download-image': 60 * MIN,
};

export function commandTimeoutMs(command: string): number {
  return BY_COMMAND[command] ?? DEFAULT_COMMAND_TIMEOUT_MS;
}
