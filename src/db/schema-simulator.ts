/**
 * The simulator's own world: what a simulated machine "really" has, independent of the platform
 * (src/drivers/simulator/). Its tables live in the platform's database so that a crash of the
 * node loses nothing the simulated hosts "run".
 */
import type { JsonWithDefault, Timestamp, WithDefault } from './columns.js';

export interface SimulatorHostTable {
  address: string;
  cpu: number;
  memory: number;
  facts: JsonWithDefault<Record<string, unknown>>;
  createdAt: Timestamp;
}

export interface SimulatorBackupStorageTable {
  url: string;
  capacity: number;
  createdAt: Timestamp;
}

export interface SimulatorBackupStorageImageTable {
  url: string;
  imageUuid: string;
  size: number;
}

export interface SimulatorVmTable {
  vmUuid: string;
  hostAddress: string;
  state: string;
  cpu: number;
  memory: number;
  updatedAt: Timestamp;
  /** the user-data and cloud-init instance id the host was given with vm.start (0017) */
  userData: WithDefault<string | null>;
  instanceId: WithDefault<string | null>;
  /** the synthetic boot log of the VM (0024, drivers/simulator/serial-log.ts) */
  serialLog: WithDefault<string>;
}
