/**
 * The NIC chains, each in its VM's queue and holding the VM (claim.ts):
 *
 * vm-nic.create (attach an L3)   claim-vm → allocate-nic (address + NIC + groups; rollback deletes
 *                                them) → apply-network-services (a running VM's host carries it,
 *                                host and routers re-synced; rollback takes it off, re-syncs) →
 *                                plug-on-host (vm.attach-nic; rollback vm.detach-nic) → release-vm
 * vm-nic.delete (detach)         claim-vm → unplug-on-host (vm.detach-nic; rollback plugs it back)
 *                                → release-network-services (off the host, re-synced; rollback
 *                                puts it back) → delete-nic (NIC + address, the VM let go, in one
 *                                transaction; the default moves to the lowest remaining device;
 *                                hosts and routers re-synced)
 * vm-nic.change-ip               claim-vm → allocate-ip (rollback releases it) → switch-ip (the NIC
 *                                takes it, host and routers re-synced; rollback switches back and
 *                                re-syncs) → release-old-ip (with the VM let go, one transaction)
 * The steps that cannot be undone come last and let the VM go in their own transaction, so no
 * later failure can ask for them to be undone.
 * vm-nic.set-default             claim-vm → switch-default (host and routers re-synced; rollback
 *                                gives the default back, re-syncs) → release-vm
 *
 * Rollbacks read what to undo from the database or the params fixed at admission, and are
 * idempotent. Only a Running VM is touched on its host (a Stopped VM's NICs are on no host).
 */
import { sql } from 'kysely';
import type { HostAddress } from '../../../drivers/port.js';
import type { FlowDef, FlowStep, StepContext } from '../../../engine/flow.js';
import { resourceEvent } from '../../common.js';
import { allocateIp, releaseIps } from '../../network/ipam/index.js';
import type { FlowDeps } from '../../service.js';
import { moveNics } from '../vm/network-steps.js';
import { addressOf } from '../vm/placement.js';
import { vmRow } from '../vm/transitions.js';
import { claimStep, releaseStep, releaseVm } from './claim.js';
import { type NicOpParams, vmNicFamily } from './model.js';
import { joinGroups, makeNic, type NicToMake, nicSpecs, peerHosts, removeNics, syncNetwork } from './nics.js';

type Ctx<P> = StepContext<P, FlowDeps>;

export interface AttachParams extends NicOpParams {
  /** device id and default are decided when it is made (the VM is held: nothing changes them) */
  nic: Omit<NicToMake, 'deviceId' | 'isDefault'>;
  securityGroupUuids: string[];
}

export interface ChangeIpParams extends NicOpParams {
  ip: string | null;
  newAddressUuid: string;
  oldIp: string | null;
  oldAddressUuid: string | null;
}

export interface SetDefaultParams extends NicOpParams {
  previousDefault: string | null;
}

/** The VM's host while it runs there (hot-plug and host state concern only a Running VM). */
async function runningHost<P extends NicOpParams>(ctx: Ctx<P>): Promise<string | null> {
  const vm = await vmRow(ctx.db, ctx.params.vmUuid);
  return vm.state === 'Running' && vm.hostUuid ? vm.hostUuid : null;
}

/** One NIC's host goes to `host` (null: none) and what serves it is re-synced. */
async function placeOne<P extends NicOpParams>(ctx: Ctx<P>, host: string | null): Promise<void> {
  const nic = await ctx.db
    .selectFrom('vmNics as n')
    .innerJoin('l3Networks as l3', 'l3.uuid', 'n.l3NetworkUuid')
    .select(['n.hostUuid', 'n.l3NetworkUuid', 'l3.provider'])
    .where('n.uuid', '=', ctx.params.uuid)
    .executeTakeFirst();
  if (!nic) return;
  await ctx.db
    .updateTable('vmNics')
    .set({ hostUuid: host, updatedAt: new Date() })
    .where('uuid', '=', ctx.params.uuid)
    .execute();
  await syncNetwork(ctx.db, ctx.deps, {
    hosts: [host],
    leaving: [nic.hostUuid],
    routed: nic.provider === 'virtual-router' ? [nic.l3NetworkUuid] : [],
  });
}

/** Re-syncs the NIC's host (if any) and its L3's router. */
async function resyncNic<P extends NicOpParams>(ctx: Ctx<P>): Promise<void> {
  const nic = await ctx.db
    .selectFrom('vmNics as n')
    .innerJoin('l3Networks as l3', 'l3.uuid', 'n.l3NetworkUuid')
    .select(['n.hostUuid', 'n.l3NetworkUuid', 'l3.provider'])
    .where('n.uuid', '=', ctx.params.uuid)
    .executeTakeFirst();
  if (!nic) return;
  await syncNetwork(ctx.db, ctx.deps, {
    hosts: [nic.hostUuid],
    // its groups' other members list its address
    leaving: await peerHosts(ctx.db, [ctx.params.uuid]),
    routed: nic.provider === 'virtual-router' ? [nic.l3NetworkUuid] : [],
  });
}

function hostCommand<P extends NicOpParams>(o: {
  name: string;
  describe: string;
  run: (ctx: Ctx<P>, host: HostAddress) => Promise<void>;
  undo: (ctx: Ctx<P>, host: HostAddress) => Promise<void>;
}): FlowStep<P, FlowDeps> {
  const on = async (ctx: Ctx<P>, f: typeof o.run) => {
    const host = await runningHost(ctx);
    if (host) await f(ctx, await addressOf(ctx.db, host));
  };
  return {
    name: o.name,
    describe: o.describe,
    run: (ctx) => on(ctx, o.run),
    rollback: (ctx) => on(ctx, o.undo),
  };
}

const plug = async <P extends NicOpParams>(ctx: Ctx<P>, host: HostAddress) => {
  const [nic] = await nicSpecs(ctx.db, ctx.params.vmUuid, ctx.params.uuid);
  if (nic) await ctx.deps.drivers.send(host, 'vm.attach-nic', { vmUuid: ctx.params.vmUuid, nic });
};
const unplug = async <P extends NicOpParams>(ctx: Ctx<P>, host: HostAddress) => {
  await ctx.deps.drivers.send(host, 'vm.detach-nic', { vmUuid: ctx.params.vmUuid, nicUuid: ctx.params.uuid });
};

const nicResult = async <P extends NicOpParams>(ctx: Ctx<P>) =>
  ctx.db.selectFrom('vmNics').selectAll().where('uuid', '=', ctx.params.uuid).executeTakeFirst();

export const attachFlow: FlowDef<AttachParams, FlowDeps> = {
  kind: 'vm-nic.create',
  recovery: 'rollback',
  steps: [
    claimStep('attach-nic'),
    {
      name: 'allocate-nic',
      describe: 'allocate the address and make the NIC',
      local: true,
      async run(ctx) {
        const vm = await vmRow(ctx.db, ctx.params.vmUuid);
        const { next, none } = await ctx.db
          .selectFrom('vmNics')
          .select([
            sql<number>`coalesce(max(device_id) + 1, 0)::int`.as('next'),
            sql<boolean>`count(*) = 0`.as('none'),
          ])
          .where('vmUuid', '=', vm.uuid)
          .executeTakeFirstOrThrow();
        // the first NIC of a VM is its default one
        await makeNic(ctx.db, vm, { ...ctx.params.nic, deviceId: next, isDefault: none });
        await joinGroups(ctx.db, [ctx.params.uuid], ctx.params.securityGroupUuids);
        await ctx.emit([
          resourceEvent(vmNicFamily, { uuid: ctx.params.uuid, accountUuid: vm.accountUuid }, 'created', {
            vmUuid: vm.uuid,
          }),
        ]);
      },
      async rollback(ctx) {
        // read before the memberships go: the groups' other members lose its address
        const peers =
          ctx.params.securityGroupUuids.length > 0 ? await peerHosts(ctx.db, [ctx.params.uuid]) : [];
        await removeNics(ctx.db, { nicUuid: ctx.params.uuid });
        if (peers.length > 0) await syncNetwork(ctx.db, ctx.deps, { leaving: peers, routed: [] });
      },
    },
    {
      name: 'apply-network-services',
      describe: 'configure the network of the vm’s host and routers',
      async run(ctx) {
        const host = await runningHost(ctx);
        if (host) await moveNics(ctx, await vmRow(ctx.db, ctx.params.vmUuid), host);
        // its router, and its groups' other members (they list its address, placed or not)
        await resyncNic(ctx);
      },
      async rollback(ctx) {
        await placeOne(ctx, null);
      },
    },
    hostCommand<AttachParams>({
      name: 'plug-on-host',
      describe: 'hot-plug the NIC',
      run: plug,
      undo: unplug,
    }),
    releaseStep('attach-nic'),
  ],
  result: nicResult,
};

export const detachFlow: FlowDef<NicOpParams, FlowDeps> = {
  kind: 'vm-nic.delete',
  recovery: 'rollback',
  steps: [
    claimStep('detach-nic'),
    hostCommand<NicOpParams>({
      name: 'unplug-on-host',
      describe: 'hot-unplug the NIC',
      run: unplug,
      undo: plug,
    }),
    {
      name: 'release-network-services',
      describe: 'remove the NIC from its host’s network and routers',
      run: (ctx) => placeOne(ctx, null),
      async rollback(ctx) {
        await placeOne(ctx, await runningHost(ctx));
      },
    },
    {
      // the last step, which cannot be undone: the VM is let go in the same transaction, and
      // the re-syncs after it are best-effort (a host or router that missed it gets its whole
      // state on its next sync or reconnect)
      name: 'delete-nic',
      describe: 'delete the NIC, release its address and let the vm go',
      async run(ctx) {
        const vm = await vmRow(ctx.db, ctx.params.vmUuid);
        const peers = await peerHosts(ctx.db, [ctx.params.uuid]);
        const gone = await removeNics(
          ctx.db,
          { nicUuid: ctx.params.uuid },
          { promoteDefault: true, also: (tx) => releaseVm(tx, ctx.params.vmUuid, 'detach-nic') },
        );
        await syncNetwork(ctx.db, ctx.deps, {
          leaving: [...gone.defaultHosts, ...gone.hostUuids, ...peers],
          routed: gone.routed,
        }).catch((err) =>
          ctx.deps.log.warn({ err, nic: ctx.params.uuid }, 'network re-sync after a detach failed'),
        );
        await ctx.emit([
          resourceEvent(vmNicFamily, { uuid: ctx.params.uuid, accountUuid: vm.accountUuid }, 'deleted', {
            vmUuid: vm.uuid,
          }),
        ]);
      },
    },
  ],
};

export const changeIpFlow: FlowDef<ChangeIpParams, FlowDeps> = {
  kind: 'vm-nic.change-ip',
  recovery: 'rollback',
  steps: [
    claimStep('change-nic-ip'),
    {
      name: 'allocate-ip',
      describe: 'allocate the new address',
      local: true,
      async run(ctx) {
        const nic = await ctx.db
          .selectFrom('vmNics')
          .select(['l3NetworkUuid', 'accountUuid'])
          .where('uuid', '=', ctx.params.uuid)
          .executeTakeFirstOrThrow();
        await allocateIp(ctx.db, {
          l3NetworkUuid: nic.l3NetworkUuid,
          accountUuid: nic.accountUuid,
          usedFor: 'vm-nic',
          ownerUuid: ctx.params.uuid,
          vmUuid: ctx.params.vmUuid,
          uuid: ctx.params.newAddressUuid,
          ...(ctx.params.ip ? { ip: ctx.params.ip } : {}),
        });
      },
      async rollback(ctx) {
        await releaseIps(ctx.db, { uuid: ctx.params.newAddressUuid });
      },
    },
    {
      name: 'switch-ip',
      describe: 'give the NIC its new address',
      async run(ctx) {
        const address = await ctx.db
          .selectFrom('ipAddresses')
          .select(['uuid', 'ip'])
          .where('uuid', '=', ctx.params.newAddressUuid)
          .executeTakeFirstOrThrow();
        await ctx.db
          .updateTable('vmNics')
          .set({ ip: address.ip, ipAddressUuid: address.uuid, updatedAt: new Date() })
          .where('uuid', '=', ctx.params.uuid)
          .execute();
        await resyncNic(ctx);
      },
      async rollback(ctx) {
        await ctx.db
          .updateTable('vmNics')
          .set({ ip: ctx.params.oldIp, ipAddressUuid: ctx.params.oldAddressUuid, updatedAt: new Date() })
          .where('uuid', '=', ctx.params.uuid)
          .execute();
        await resyncNic(ctx);
      },
    },
    {
      // the last step (it cannot be undone): the VM is let go in the same transaction
      name: 'release-old-ip',
      describe: 'release the old address and let the vm go',
      local: true,
      async run(ctx) {
        await ctx.db.transaction().execute(async (tx) => {
          if (ctx.params.oldAddressUuid) await releaseIps(tx, { uuid: ctx.params.oldAddressUuid });
          await releaseVm(tx, ctx.params.vmUuid, 'change-nic-ip');
        });
      },
    },
  ],
  result: nicResult,
};

/** Makes `nic` the VM's only default NIC (nothing when it is gone). */
async function makeDefault(ctx: Ctx<SetDefaultParams>, nic: string | null): Promise<void> {
  if (!nic) return;
  await ctx.db
    .updateTable('vmNics')
    .set({ isDefault: sql<boolean>`uuid = ${nic}`, updatedAt: new Date() })
    .where('vmUuid', '=', ctx.params.vmUuid)
    .where((eb) => eb.exists(eb.selectFrom('vmNics as d').select('d.uuid').where('d.uuid', '=', nic)))
    .execute();
  const vm = await vmRow(ctx.db, ctx.params.vmUuid);
  // the DHCP answers of every NIC of the VM change (only the default one carries the gateway)
  const nics = await ctx.db
    .selectFrom('vmNics as n')
    .innerJoin('l3Networks as l3', 'l3.uuid', 'n.l3NetworkUuid')
    .select(['n.hostUuid', 'n.l3NetworkUuid', 'l3.provider'])
    .where('n.vmUuid', '=', vm.uuid)
    .execute();
  await syncNetwork(ctx.db, ctx.deps, {
    hosts: nics.map((n) => n.hostUuid),
    routed: nics.filter((n) => n.provider === 'virtual-router').map((n) => n.l3NetworkUuid),
  });
}

export const setDefaultFlow: FlowDef<SetDefaultParams, FlowDeps> = {
  kind: 'vm-nic.set-default',
  recovery: 'rollback',
  steps: [
    claimStep('set-default-nic'),
    {
      name: 'switch-default',
      describe: 'make the NIC the default one',
      run: (ctx) => makeDefault(ctx, ctx.params.uuid),
      rollback: (ctx) => makeDefault(ctx, ctx.params.previousDefault),
    },
    releaseStep('set-default-nic'),
  ],
  result: nicResult,
};
