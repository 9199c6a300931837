/**
 * The VM create chain's network steps (see create-flow.ts for the whole chain):
 * allocate-nics (the NICs' addresses) and apply-network-services (the NICs themselves, their
 * host, security groups and virtual routers).
 */
import { CloudError } from '../../../kernel/errors.js';
import type { AllocatedIp } from '../../network/ipam/index.js';
import { ensureVirtualRouters } from '../../network/virtual-router/ensure.js';
import {
  allocateNicIp,
  insertNics,
  joinGroups,
  peerHosts,
  placeNics,
  removeNics,
  syncNetwork,
} from '../vm-nic/nics.js';
import { type Ctx, placed, type Step } from './create-context.js';

export const nicsOf = (ctx: Ctx) => ctx.params.nics ?? [];

export function allocateNics(): Step {
  return {
    name: 'allocate-nics',
    describe: 'allocate the NICs’ addresses',
    // only this database; the rollback finds the NICs and addresses by the VM
    local: true,
    async run(ctx) {
      const vm = { uuid: ctx.job.resourceUuid!, accountUuid: ctx.job.accountUuid };
      const addresses: AllocatedIp[] = [];
      for (const nic of nicsOf(ctx)) addresses.push(await allocateNicIp(ctx.db, vm, nic));
      if (addresses.length > 0) ctx.data.addresses = addresses;
    },
    async rollback(ctx) {
      if (nicsOf(ctx).length === 0) return;
      // the groups' other members lose this VM's addresses (read before the memberships go)
      const peers = joinsGroups(ctx)
        ? await peerHosts(
            ctx.db,
            nicsOf(ctx).map((n) => n.uuid),
          )
        : [];
      await removeNics(ctx.db, { vmUuid: ctx.job.resourceUuid! });
      if (peers.length > 0) await syncNetwork(ctx.db, ctx.deps, { leaving: peers, routed: [] });
    },
  };
}

/** The addresses allocate-nics made, in the NICs' order (from the database if not handed on). */
async function addressesOf(ctx: Ctx): Promise<AllocatedIp[]> {
  const handed = ctx.data.addresses as AllocatedIp[] | undefined;
  if (handed) return handed;
  const rows = await ctx.db
    .selectFrom('ipAddresses as a')
    .innerJoin('ipRanges as r', 'r.uuid', 'a.ipRangeUuid')
    .select([
      'a.uuid',
      'a.ip',
      'a.ipVersion',
      'a.ipRangeUuid',
      'a.ownerUuid',
      'r.prefixLength',
      'r.gateway',
      'r.netmask',
    ])
    .where('a.vmUuid', '=', ctx.job.resourceUuid!)
    .execute();
  return nicsOf(ctx).map((nic) => {
    const a = rows.find((r) => r.ownerUuid === nic.uuid);
    if (!a) throw new CloudError('Internal', 'VM_NIC_ADDRESS_LOST', `nic ${nic.uuid} has no address`);
    return { ...a, ipVersion: a.ipVersion as 4 | 6, ipRangeUuid: a.ipRangeUuid! };
  });
}

/** the VM's NICs join security groups: the groups' other members' hosts must learn of them */
const joinsGroups = (ctx: Ctx) => nicsOf(ctx).length > 0 && (ctx.params.securityGroupUuids ?? []).length > 0;

/** the NICs go on a host only when the VM starts there */
const networkIdle = (ctx: Ctx) => nicsOf(ctx).length === 0 || ctx.params.strategy === 'create-stopped';

/** the virtual-router L3s of the VM's NICs (none for a router's own appliance) */
export const routedOf = (ctx: Ctx) =>
  ctx.params.applianceOf
    ? []
    : [
        ...new Set(
          nicsOf(ctx)
            .filter((n) => n.provider === 'virtual-router')
            .map((n) => n.l3NetworkUuid),
        ),
      ];

/**
 * The NICs are made, in one statement: on the placed host (host_uuid) when the VM starts there,
 * on none for create-stopped; with their security groups; the routers of their virtual-router
 * L3s are made when missing, and the hosts of the groups' other members are re-synced. Without a
 * router to make or a group to join this only changes this database, so it is local: the host's
 * network is re-synced by start-on-host, right before the VM starts (a journal write less per
 * create). The rollback takes the NICs off the host and re-syncs the hosts it reads from the
 * database (none when the run never happened); allocate-nics' rollback deletes them.
 */
export function applyNetworkServices(): Step {
  return {
    name: 'apply-network-services',
    describe: 'make the NICs on the vm’s host network and make its routers',
    local: (ctx) =>
      nicsOf(ctx).length === 0 || (!joinsGroups(ctx) && (networkIdle(ctx) || routedOf(ctx).length === 0)),
    async run(ctx) {
      const nics = nicsOf(ctx);
      if (nics.length === 0) return;
      const vm = { uuid: ctx.job.resourceUuid!, accountUuid: ctx.job.accountUuid };
      const addresses = await addressesOf(ctx);
      const host = networkIdle(ctx) ? null : placed(ctx).hostUuid;
      ctx.data.nics = await insertNics(
        ctx.db,
        vm,
        nics.map((nic, i) => ({ ...nic, address: addresses[i]! })),
        host,
      );
      await joinGroups(
        ctx.db,
        nics.map((n) => n.uuid),
        ctx.params.securityGroupUuids ?? [],
      );
      const routed = routedOf(ctx);
      if (host && routed.length > 0) await ensureVirtualRouters(ctx, routed);
      // the groups' other members learn the new addresses (also for create-stopped: a remote
      // group lists its members placed or not)
      if (joinsGroups(ctx)) {
        const peers = await peerHosts(
          ctx.db,
          nics.map((n) => n.uuid),
        );
        await syncNetwork(ctx.db, ctx.deps, { leaving: peers, routed: [] });
      }
    },
    async rollback(ctx) {
      if (networkIdle(ctx)) return;
      const moved = await placeNics(ctx.db, ctx.job.resourceUuid!, null);
      if (moved.before.length > 0)
        await syncNetwork(ctx.db, ctx.deps, { leaving: moved.before, routed: moved.routed });
    },
  };
}
