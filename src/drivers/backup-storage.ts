/**
 * The backup-storage port: how the control plane talks to a backup storage (where images live),
 * whatever implements it. Drivers are chosen per storage type where the node is composed
 * (node.ts); flows only see this registry. Commands are those of `BackupStorageCommands`.
 */
import type { BackupStorageCommand, BackupStorageCommands } from '../contract/agent.js';
import { CloudError } from '../kernel/errors.js';

export interface BackupStorageAddress {
  uuid: string;
  type: string;
  url: string;
}

export type BsRequest<C extends BackupStorageCommand> = BackupStorageCommands[C]['request'];
export type BsResponse<C extends BackupStorageCommand> = BackupStorageCommands[C]['response'];

export interface BackupStorageDriver {
  send<C extends BackupStorageCommand>(
    bs: BackupStorageAddress,
    command: C,
    request: BsRequest<C>,
  ): Promise<BsResponse<C>>;
  /**
   * Simulated storages only: makes sure the simulated storage exists at the address (capacity
   * given explicitly is applied; otherwise an existing one keeps its own). Real storages exist
   * before they are added, so their drivers leave this out.
   */
  provision?(bs: BackupStorageAddress, opts: { capacity?: number }): Promise<void>;
}

export class BackupStorageDriverRegistry {
  constructor(private readonly byType: Record<string, BackupStorageDriver>) {}

  types(): string[] {
    return Object.keys(this.byType);
  }

  for(type: string): BackupStorageDriver {
    const driver = this.byType[type];
    if (!driver) {
      throw new CloudError(
        'Invalid',
        'BACKUP_STORAGE_TYPE_UNSUPPORTED',
        `no driver for backup storage type ${type}`,
        {
          details: { type, supported: this.types() },
        },
      );
    }
    return driver;
  }

  send<C extends BackupStorageCommand>(
    bs: BackupStorageAddress,
    command: C,
    request: BsRequest<C>,
  ): Promise<BsResponse<C>> {
    return this.for(bs.type).send(bs, command, request);
  }

  async provision(bs: BackupStorageAddress, opts: { capacity?: number }): Promise<void> {
    await this.for(bs.type).provision?.(bs, opts);
  }
}
