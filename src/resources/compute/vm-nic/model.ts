/**
 * VM NICs as an API kind: the family, the query schema, and the API shape (a NIC row plus the
 * security groups it is in, read for a whole page in one query).
 */
import type { Db } from '../../../db/pool.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Family } from '../../common.js';

export const vmNicFamily: Family = { singular: 'vm-nic', kind: 'vm-nics', table: 'vmNics' };

export const vmNicSchema: KindSchema = {
  kind: 'vm-nics',
  table: 'vmNics',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    vmUuid: 'uuid',
    l3NetworkUuid: 'uuid',
    l2NetworkUuid: 'uuid',
    accountUuid: 'uuid',
    mac: 'string',
    ip: 'string',
    deviceId: 'int',
    isDefault: 'boolean',
    hostUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    vm: { kind: 'vms', local: 'vmUuid', remote: 'uuid' },
    l3Network: { kind: 'l3-networks', local: 'l3NetworkUuid', remote: 'uuid' },
    l2Network: { kind: 'l2-networks', local: 'l2NetworkUuid', remote: 'uuid' },
    host: { kind: 'hosts', local: 'hostUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

/** What the chains of one NIC run with. */
export interface NicOpParams {
  /** the NIC */
  uuid: string;
  vmUuid: string;
}

/**
 * The security groups of NICs, batched: every row presented in the same tick (a page of a
 * list) is answered by one query.
 */
export class GroupsOfNics {
  private pending = new Map<string, Array<{ resolve(g: string[]): void; reject(e: unknown): void }>>();

  constructor(private readonly db: Db) {}

  of(nicUuid: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) queueMicrotask(() => void this.flush());
      const waiting = this.pending.get(nicUuid) ?? [];
      waiting.push({ resolve, reject });
      this.pending.set(nicUuid, waiting);
    });
  }

  private async flush(): Promise<void> {
    const pending = this.pending;
    this.pending = new Map();
    try {
      const rows = await this.db
        .selectFrom('vmNicSecurityGroups')
        .select(['vmNicUuid', 'securityGroupUuid'])
        .where('vmNicUuid', 'in', [...pending.keys()])
        .orderBy('securityGroupUuid')
        .execute();
      for (const [nic, waiting] of pending) {
        const groups = rows.filter((r) => r.vmNicUuid === nic).map((r) => r.securityGroupUuid);
        for (const w of waiting) w.resolve(groups);
      }
    } catch (err) {
      for (const waiting of pending.values()) for (const w of waiting) w.reject(err);
    }
  }
}

/** The API shape: the row's fields and its security groups (internals stay inside). */
export async function presentNic(
  groups: GroupsOfNics,
  row: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const { ipAddressUuid: _a, ...nic } = row;
  return { ...nic, securityGroupUuids: await groups.of(row.uuid as string) };
}
