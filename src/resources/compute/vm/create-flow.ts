/**
 * The VM create chain (recovery: rollback — a create interrupted by a node's death is undone):
 *
 *   create-record            done at admission (row, quota); rollback deletes the row, gives quota back
 *   allocate-nics            the NICs' addresses (IPAM); rollback deletes the VM's NICs and
 *                            addresses
 *   allocate-host            scheduler + conditional reservation; rollback releases what the row holds
 *   allocate-primary-storage the scheduler's storage for the host (capacity is taken per volume below)
 *   ensure-image-cache       the image on that storage; rollback releases a cache entry it created
 *   create-root-volume       clone of the cached image; rollback destroys it
 *   create-data-volumes      one per disk offering / size; rollback destroys them
 *   apply-network-services   the NICs (MACs, device ids, default, security groups), on the host
 *                            (host_uuid; none for create-stopped); the routers of their
 *                            virtual-router L3s made when missing; the hosts of the groups' other
 *                            members re-synced; rollback takes the NICs off the host, re-syncs
 *   start-on-host            the host's network and the routers re-synced, then vm.start (skipped
 *                            for create-stopped); rollback vm.destroy
 *   mark-state               Running — or, for create-stopped, Stopped with the host capacity given
 *                            back (a stopped VM holds none; its volumes stay where they are)
 *
 * Every rollback is idempotent and reads what to undo from the VM row or the journal, so the
 * step in flight at a failure (which may have half-happened) is undone too. The steps that only
 * touch this database (allocate-nics, allocate-host, allocate-primary-storage, mark-state;
 * create-data-volumes without data disks; apply-network-services without a router to make) are
 * `local`: journaled with the next save (see engine/flow.ts).
 */
import type { NicSpec, VolumeSpec } from '../../../contract/agent.js';
import type { FlowDef } from '../../../engine/flow.js';
import { resourceEvent } from '../../common.js';
import { accountOf, releaseQuota } from '../../identity/quota/quota.js';
import { releaseRouterAppliance } from '../../network/virtual-router/ensure.js';
import type { FlowDeps } from '../../service.js';
import { ensureImageCache, releaseImageCache, releaseImageCachesOf } from '../../storage/image/cache.js';
import { destroyVolume, provisionVolume } from '../../storage/volume/provision.js';
import { syncNetwork } from '../vm-nic/nics.js';
import { createQuota } from './admission.js';
import { type Ctx, type Placed, placed, type Step } from './create-context.js';
import { allocateNics, applyNetworkServices, nicsOf, routedOf } from './create-network.js';
import { withGuestConfig } from './guest-config.js';
import { releaseHost } from './host-capacity.js';
import { type VmCreateParams, vmFamily } from './model.js';
import { place } from './placement.js';
import { hostAddress, type VmRuntime, vmSpec } from './runtime.js';
import { finishOperation, markState, vmResult } from './transitions.js';

function createRecord(): Step {
  return {
    name: 'create-record',
    describe: 'record the vm and reserve its quota',
    async run() {},
    async rollback(ctx) {
      const uuid = ctx.job.resourceUuid!;
      const account = await accountOf(ctx.db, ctx.job.accountUuid);
      await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
        // a router appliance: its router lets go of the row first (and goes to Error)
        if (ctx.params.applianceOf) await releaseRouterAppliance(tx, ctx.params.applianceOf, uuid);
        const row = await tx
          .deleteFrom('vms')
          .where('uuid', '=', uuid)
          .returning(['uuid', 'accountUuid'])
          .executeTakeFirst();
        if (!row) return; // already undone: the quota went with the row
        await releaseQuota(tx, account, createQuota(ctx.params));
        await tx.deleteFrom('tags').where('resourceUuid', '=', uuid).execute();
        batch.add({
          ...resourceEvent(vmFamily, row, 'deleted', { reason: 'rolled back' }),
          jobUuid: ctx.job.uuid,
        });
      });
    },
  };
}

function allocateHost(rt: VmRuntime): Step {
  return {
    name: 'allocate-host',
    describe: 'choose a host and reserve its CPU and memory',
    // only this database: the rollback reads the reservation from the VM row
    local: true,
    async run(ctx) {
      const p = ctx.params;
      const placement = await place(ctx.db, rt.snapshot, ctx.deps.settings, {
        vm: {
          uuid: ctx.job.resourceUuid!,
          cpu: p.cpu,
          memory: p.memory,
          affinityGroupUuid: p.affinityGroupUuid,
        },
        request: {
          cpu: p.cpu,
          memory: p.memory,
          rootDiskSize: p.rootDiskSize,
          dataDiskSizes: p.dataDisks.map((d) => d.size),
          image: {
            uuid: p.image.uuid,
            platform: p.image.platform,
            format: p.image.format,
            size: p.image.actualSize || p.image.size,
          },
          hints: p.hints,
          l2NetworkUuids: [...new Set(nicsOf(ctx).map((n) => n.l2NetworkUuid))],
        },
        strategy: p.allocatorStrategy,
        slot: 'host',
      });
      ctx.data.placed = {
        hostUuid: placement.hostUuid,
        primaryStorageUuid: placement.primaryStorageUuid,
        local: placement.local,
      } satisfies Placed;
    },
    async rollback(ctx) {
      const host = await releaseHost(ctx.db, ctx.job.resourceUuid!, 'host');
      if (host) rt.snapshot.onHostCapacity(host, ctx.params.cpu, ctx.params.memory, -1);
    },
  };
}

function allocatePrimaryStorage(): Step {
  return {
    name: 'allocate-primary-storage',
    describe: 'settle the primary storage for the volumes',
    local: true,
    // The scheduler chose the storage with the host (for local storage, the host's own share).
    // Nothing is reserved here: each volume reserves its size when it is provisioned, with a
    // conditional UPDATE that also requires the storage to be Enabled — that is the check.
    async run(ctx) {
      placed(ctx);
    },
  };
}

function ensureCache(rt: VmRuntime): Step {
  return {
    name: 'ensure-image-cache',
    describe: 'cache the image on the primary storage',
    // reusing a shared Ready entry from the snapshot touches nothing (not even this database):
    // then the step is local, and the run takes the entry found here. Its rollback releases only
    // an entry it created, so it is safe when the run never happened.
    local: (ctx) => {
      const p = ctx.data.placed as Placed | undefined;
      const on = p?.local ? p.hostUuid : null;
      const reusable = p && rt.snapshot.reusableCache(p.primaryStorageUuid, on, ctx.params.image.uuid);
      ctx.data.cache = reusable ? { ...reusable, created: false } : undefined;
      return reusable !== undefined;
    },
    async run(ctx) {
      const p = placed(ctx);
      const image = ctx.params.image;
      const on = p.local ? p.hostUuid : null;
      if ((ctx.data.cache as { created?: boolean } | undefined)?.created === false) return; // reused
      const reusable = rt.snapshot.reusableCache(p.primaryStorageUuid, on, image.uuid);
      if (reusable) {
        ctx.data.cache = { ...reusable, created: false };
        return;
      }
      const host = await hostAddress(rt, ctx.db, p.hostUuid);
      // waiting for another create's copy gives the running slot back, and stops when that
      // create's job is gone (cache.ts)
      const cache = await ensureImageCache(
        ctx.db,
        ctx.deps.drivers,
        image,
        { primaryStorageUuid: p.primaryStorageUuid, hostUuid: on, host },
        {
          jobUuid: ctx.job.uuid,
          ...(ctx.idle ? { idle: ctx.idle } : {}),
          ...(ctx.owners ? { owners: ctx.owners } : {}),
        },
      );
      ctx.data.cache = cache;
      // an entry handed to us (not created) is shared from now on: later creates may reuse it
      rt.snapshot.onImageCached(p.primaryStorageUuid, on, image.uuid, cache.created ? undefined : cache);
      if (cache.created) rt.snapshot.onStorageUsed(p.primaryStorageUuid, on, image.actualSize);
    },
    async rollback(ctx) {
      const cache = ctx.data.cache as { cacheUuid: string; created: boolean } | undefined;
      if (cache?.created) await releaseImageCache(ctx.db, ctx.deps.drivers, cache.cacheUuid, ctx.job.uuid);
      // an entry this job made whose creation the journal never saw (a crash mid-copy)
      await releaseImageCachesOf(ctx.db, ctx.deps.drivers, ctx.job.uuid);
    },
  };
}

async function provision(
  rt: VmRuntime,
  ctx: Ctx,
  v: {
    uuid: string;
    name: string;
    type: 'Root' | 'Data';
    size: number;
    deviceId: number;
    diskOfferingUuid: string | null;
  },
): Promise<VolumeSpec> {
  const p = placed(ctx);
  const host = await hostAddress(rt, ctx.db, p.hostUuid);
  const root = v.type === 'Root';
  const cachePath = (ctx.data.cache as { path: string } | undefined)?.path;
  const row = await provisionVolume(ctx.db, ctx.deps.drivers, {
    uuid: v.uuid,
    name: v.name,
    accountUuid: ctx.job.accountUuid,
    type: v.type,
    size: v.size,
    format: root && ctx.params.image.format !== 'iso' ? ctx.params.image.format : 'qcow2',
    primaryStorageUuid: p.primaryStorageUuid,
    hostUuid: p.local ? p.hostUuid : null,
    host,
    vmUuid: ctx.job.resourceUuid!,
    deviceId: v.deviceId,
    diskOfferingUuid: v.diskOfferingUuid,
    imageUuid: root ? ctx.params.image.uuid : null,
    ...(root && ctx.params.image.format !== 'iso' && cachePath ? { fromImageCachePath: cachePath } : {}),
    deleteWithVm: root || ctx.params.deleteDataDisksWithVm,
  });
  rt.snapshot.onStorageUsed(p.primaryStorageUuid, p.local ? p.hostUuid : null, v.size);
  return { uuid: row.uuid, size: row.size, format: row.format, deviceId: v.deviceId, path: row.path ?? '' };
}

function createRootVolume(rt: VmRuntime): Step {
  return {
    name: 'create-root-volume',
    describe: 'create the root volume from the cached image',
    async run(ctx) {
      const spec = await provision(rt, ctx, {
        uuid: ctx.params.rootVolumeUuid,
        name: `ROOT-${ctx.params.name}`,
        type: 'Root',
        size: ctx.params.rootDiskSize,
        deviceId: 0,
        diskOfferingUuid: null,
      });
      ctx.data.volumes = [spec];
    },
    async rollback(ctx) {
      await destroyVolume(ctx.db, ctx.deps.drivers, ctx.params.rootVolumeUuid);
    },
  };
}

function createDataVolumes(rt: VmRuntime): Step {
  return {
    name: 'create-data-volumes',
    describe: 'create the data volumes',
    // with no data disk it does nothing (and its rollback, by volume uuid, is safe either way)
    local: (ctx) => ctx.params.dataDisks.length === 0,
    async run(ctx) {
      const specs: VolumeSpec[] = [];
      for (const [i, d] of ctx.params.dataDisks.entries()) {
        specs.push(
          await provision(rt, ctx, {
            uuid: d.volumeUuid,
            name: `DATA-${ctx.params.name}-${i + 1}`,
            type: 'Data',
            size: d.size,
            deviceId: i + 1,
            diskOfferingUuid: d.diskOfferingUuid,
          }),
        );
      }
      ctx.data.volumes = [...((ctx.data.volumes as VolumeSpec[] | undefined) ?? []), ...specs];
    },
    async rollback(ctx) {
      for (const d of ctx.params.dataDisks) await destroyVolume(ctx.db, ctx.deps.drivers, d.volumeUuid);
    },
  };
}

function startOnHost(rt: VmRuntime): Step {
  return {
    name: 'start-on-host',
    describe: 'start the vm on its host',
    async run(ctx) {
      if (ctx.params.strategy === 'create-stopped') return;
      const p = placed(ctx);
      const host = await hostAddress(rt, ctx.db, p.hostUuid);
      const vm = {
        uuid: ctx.job.resourceUuid!,
        name: ctx.params.name,
        cpu: ctx.params.cpu,
        memory: ctx.params.memory,
      };
      // its network first (bridges, DHCP, security groups; its routers' DHCP): see
      // apply-network-services, whose rollback re-syncs after this step's is done
      if (nicsOf(ctx).length > 0)
        await syncNetwork(ctx.db, ctx.deps, { hosts: [p.hostUuid], routed: routedOf(ctx) });
      await ctx.deps.drivers.send(host, 'vm.start', {
        vm: await withGuestConfig(
          ctx.db,
          vmSpec(
            vm,
            (ctx.data.volumes as VolumeSpec[]) ?? [],
            (ctx.data.nics as NicSpec[]) ?? [],
            ctx.params.applianceOf,
          ),
        ),
      });
    },
    async rollback(ctx) {
      if (ctx.params.strategy === 'create-stopped') return;
      const p = ctx.data.placed as Placed | undefined;
      if (!p) return;
      await ctx.deps.drivers.send(await hostAddress(rt, ctx.db, p.hostUuid), 'vm.destroy', {
        vmUuid: ctx.job.resourceUuid!,
      });
    },
  };
}

function markCreated(rt: VmRuntime): Step {
  return {
    name: 'mark-state',
    describe: 'mark the vm Running (Stopped for create-stopped)',
    // only this database, and nothing to roll back
    local: true,
    async run(ctx) {
      if (ctx.params.strategy === 'start') {
        await markState(ctx, 'create', { state: 'Running', powerState: 'Running' });
        return;
      }
      let released: string | undefined;
      await finishOperation(ctx, 'create', { state: 'Stopped', powerState: 'Stopped' }, async (tx) => {
        released = await releaseHost(tx, ctx.job.resourceUuid!, 'host');
      });
      if (released) rt.snapshot.onHostCapacity(released, ctx.params.cpu, ctx.params.memory, -1);
    },
  };
}

export function vmCreateFlow(rt: VmRuntime): FlowDef<VmCreateParams, FlowDeps> {
  return {
    kind: 'vm.create',
    recovery: 'rollback',
    steps: [
      createRecord(),
      allocateNics(),
      allocateHost(rt),
      allocatePrimaryStorage(),
      ensureCache(rt),
      createRootVolume(rt),
      createDataVolumes(rt),
      applyNetworkServices(),
      startOnHost(rt),
      markCreated(rt),
    ],
    result: (ctx) => vmResult(ctx),
  };
}
