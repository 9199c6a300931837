/**
 * Leases: the family, the query schema and the API shape. A lease belongs to its holder's account
 * (the admin sees all); its VM is the holder's too while the lease lives.
 */
import type { Selectable } from 'kysely';
import type { LeaseTable } from '../../../db/schema.js';
import type { Executor } from '../../../db/transaction.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Family } from '../../common.js';

export const leaseFamily: Family = { singular: 'lease', kind: 'leases', table: 'leases' };

export type LeaseRow = Selectable<LeaseTable>;

export const leaseSchema: KindSchema = {
  kind: 'leases',
  table: 'leases',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    poolUuid: 'uuid',
    vmUuid: 'uuid',
    userUuid: 'uuid',
    importance: { enum: ['normal', 'high'] },
    state: { enum: ['Pending', 'Active', 'Stopped', 'Ended'] },
    expiresAt: 'timestamp',
    deleteAfter: 'timestamp',
    renewals: 'int',
    endedAt: 'timestamp',
    endReason: 'string',
    floatingIp: 'string',
    loginMethod: { enum: ['ssh-key', 'password'] },
    loginUser: 'string',
    loginState: { enum: ['Delivering', 'Delivered', 'Failed'] },
    health: { enum: ['Healthy', 'Healing', 'Unhealable'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    pool: { kind: 'pools', local: 'poolUuid', remote: 'uuid' },
    vm: { kind: 'vms', local: 'vmUuid', remote: 'uuid' },
  },
  selectOnly: ['ips'],
  defaultSort: 'createdAt',
};

/** What a hand-out returns: the lease and the VM with its addresses. */
export async function leaseWithVm(db: Executor, leaseUuid: string) {
  const lease = await db
    .selectFrom('leases')
    .selectAll()
    .where('uuid', '=', leaseUuid)
    .executeTakeFirstOrThrow();
  const { notifiedAt: _n, eipUuid: _e, vipUuid: _v, ...shown } = lease;
  if (!lease.vmUuid) return { ...shown, vm: null };
  const vm = await db
    .selectFrom('vms')
    .select(['uuid', 'name', 'state', 'hostUuid', 'cpu', 'memory'])
    .where('uuid', '=', lease.vmUuid)
    .executeTakeFirst();
  const nics = await db
    .selectFrom('vmNics')
    .select(['ip', 'l3NetworkUuid', 'isDefault'])
    .where('vmUuid', '=', lease.vmUuid)
    .orderBy('deviceId')
    .execute();
  return { ...shown, vm: vm ? { ...vm, ips: nics.flatMap((n) => (n.ip ? [n.ip] : [])), nics } : null };
}
