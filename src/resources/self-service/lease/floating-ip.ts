/**
 * A pool's floating IP (`floatingL3NetworkUuid`, a public L3): each VM handed out gets an EIP
 * made for its lease, in the holder's account, mapped onto the VM's default NIC — an ordinary
 * VIP + EIP, shown with the lease (`floatingIp`) and as the holder's `vips`/`eips`. Made by the
 * allocate job after the hand-out (attachFloatingIp: idempotent, a resumed job finds it made);
 * released when the lease ends, in the ending transaction (releaseFloatingIp: the rows go and
 * the address returns to the L3), then the router is told (syncAfterLeaseEnded).
 * The pool's VMs must then sit on a virtual-router L3 (the router does the NAT): checked when
 * the pool is made.
 */
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import type { EventBatch } from '../../../engine/events.js';
import type { FieldProblem } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { resourceEvent } from '../../common.js';
import { eipFamily } from '../../network/eip/service.js';
import { allocateIp, releaseIps } from '../../network/ipam/index.js';
import { routedNic } from '../../network/vip/binding.js';
import { vipFamily } from '../../network/vip/service.js';
import { syncRoutersOfL3s } from '../../network/virtual-router/sync.js';
import type { FlowDeps, ServiceContext } from '../../service.js';
import { leaseFamily } from './model.js';

/** At pool creation: a public floating L3, and a first (default) L3 served by a virtual router. */
export async function floatingIpProblems(tx: Tx, body: Record<string, unknown>): Promise<FieldProblem[]> {
  const floating = body.floatingL3NetworkUuid as string | undefined;
  if (!floating) return [];
  const problems: FieldProblem[] = [];
  const l3 = await tx
    .selectFrom('l3Networks')
    .select(['category', 'state'])
    .where('uuid', '=', floating)
    .executeTakeFirst();
  if (!l3) problems.push({ field: 'floatingL3NetworkUuid', problem: `no L3 network ${floating}` });
  else if (l3.category !== 'public')
    problems.push({
      field: 'floatingL3NetworkUuid',
      problem: `L3 network ${floating} is ${l3.category}; floating IPs come from a public one`,
    });
  const first = ((body.l3NetworkUuids as string[] | undefined) ?? [])[0];
  const guest = first
    ? await tx.selectFrom('l3Networks').select('provider').where('uuid', '=', first).executeTakeFirst()
    : undefined;
  if (guest && guest.provider !== 'virtual-router')
    problems.push({
      field: 'l3NetworkUuids',
      problem: `a floating IP needs the VMs' default L3 (${first}) served by a virtual router, not ${guest.provider ?? 'none'}`,
    });
  return problems;
}

/** Makes the lease's EIP if its pool asks for one and it has none yet; then tells the router. */
export async function attachFloatingIp(
  ctx: ServiceContext,
  leaseUuid: string,
  jobUuid: string,
): Promise<void> {
  const l3 = await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    const lease = await tx
      .selectFrom('leases as l')
      .innerJoin('pools as p', 'p.uuid', 'l.poolUuid')
      .select([
        'l.uuid',
        'l.name',
        'l.accountUuid',
        'l.vmUuid',
        'l.state',
        'l.eipUuid',
        'p.floatingL3NetworkUuid',
      ])
      .where('l.uuid', '=', leaseUuid)
      .forUpdate('l')
      .executeTakeFirstOrThrow();
    if (!lease.floatingL3NetworkUuid || !lease.vmUuid || lease.state === 'Ended') return undefined;
    const nic = await tx
      .selectFrom('vmNics')
      .select('uuid')
      .where('vmUuid', '=', lease.vmUuid)
      .orderBy('isDefault', 'desc')
      .orderBy('deviceId')
      .executeTakeFirstOrThrow();
    const routed = await routedNic(tx, lease.accountUuid, nic.uuid, 'EIP_NIC_NOT_ROUTED');
    if (lease.eipUuid) return routed.l3NetworkUuid; // made before a crash: only the router is left to tell
    const vipUuid = newId();
    const eipUuid = newId();
    const name = `${lease.name}-fip-${leaseUuid.slice(-6)}`;
    const description = `floating IP of lease ${leaseUuid}`;
    const ip = await allocateIp(tx, {
      l3NetworkUuid: lease.floatingL3NetworkUuid,
      accountUuid: lease.accountUuid,
      usedFor: 'vip',
      ownerUuid: vipUuid,
    });
    const owner = { accountUuid: lease.accountUuid, name, description };
    await tx
      .insertInto('vips')
      .values({
        uuid: vipUuid,
        ...owner,
        l3NetworkUuid: lease.floatingL3NetworkUuid,
        ip: ip.ip,
        ipAddressUuid: ip.uuid,
        usedFor: 'eip',
      })
      .execute();
    await tx
      .insertInto('eips')
      .values({ uuid: eipUuid, ...owner, vipUuid, vmNicUuid: nic.uuid })
      .execute();
    await tx
      .updateTable('leases')
      .set({ eipUuid, vipUuid, floatingIp: ip.ip, updatedAt: new Date() })
      .where('uuid', '=', leaseUuid)
      .execute();
    const row = { uuid: vipUuid, accountUuid: lease.accountUuid };
    batch.add({ ...resourceEvent(vipFamily, row, 'created', { name, ip: ip.ip }), jobUuid });
    batch.add({
      ...resourceEvent(eipFamily, { ...row, uuid: eipUuid }, 'created', { name, vmNicUuid: nic.uuid }),
      jobUuid,
    });
    batch.add({
      ...resourceEvent(leaseFamily, lease, 'floating-ip.attached', { ip: ip.ip, eipUuid }),
      jobUuid,
    });
    return routed.l3NetworkUuid;
  });
  if (l3) await syncRoutersOfL3s(ctx.db, ctx.deps, [l3]);
}

/** In a lease's ending (or an allocation's undoing) transaction: its EIP and VIP go, the address returns. */
export async function releaseFloatingIp(tx: Tx, batch: EventBatch, leaseUuid: string): Promise<boolean> {
  const lease = await tx
    .selectFrom('leases')
    .select(['accountUuid', 'eipUuid', 'vipUuid'])
    .where('uuid', '=', leaseUuid)
    .executeTakeFirst();
  if (!lease?.vipUuid) return false;
  if (lease.eipUuid) {
    await tx.deleteFrom('eips').where('uuid', '=', lease.eipUuid).execute();
    batch.add(
      resourceEvent(eipFamily, { uuid: lease.eipUuid, accountUuid: lease.accountUuid }, 'deleted', {
        leaseUuid,
      }),
    );
  }
  await tx.deleteFrom('vips').where('uuid', '=', lease.vipUuid).execute();
  await releaseIps(tx, { ownerUuid: lease.vipUuid });
  batch.add(
    resourceEvent(vipFamily, { uuid: lease.vipUuid, accountUuid: lease.accountUuid }, 'deleted', {
      leaseUuid,
    }),
  );
  return true;
}

/**
 * After a lease with a floating IP ended: the router of its VM's network drops the mapping now,
 * rather than when the VM's NIC goes at its expunge. Best effort: that expunge syncs it anyway.
 */
export async function syncAfterLeaseEnded(db: Db, deps: FlowDeps, leaseUuid: string): Promise<void> {
  const nics = await db
    .selectFrom('leases as l')
    .innerJoin('vmNics as n', 'n.vmUuid', 'l.vmUuid')
    .select('n.l3NetworkUuid')
    .where('l.uuid', '=', leaseUuid)
    .where('l.floatingIp', 'is not', null)
    .execute();
  if (nics.length === 0) return;
  try {
    await syncRoutersOfL3s(db, deps, [...new Set(nics.map((n) => n.l3NetworkUuid))]);
  } catch (err) {
    deps.log.warn(
      { err, lease: leaseUuid },
      'router not told of a released floating IP; the VM’s expunge will',
    );
  }
}
