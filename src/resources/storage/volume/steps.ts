/**
 * Steps shared by the volume chains: holding and releasing the VM, putting a volume on a VM's
 * device list and taking it off, and telling the hypervisor (only while the VM runs there — a
 * stopped VM gets every attached volume when it next starts).
 *
 * A step that refuses (the volume changed since admission) marks `data.refused`, so its own
 * rollback leaves alone what it did not do.
 */
import { isUniqueViolation } from '../../../db/errors.js';
import type { FlowStep, StepContext } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { resourceEvent } from '../../common.js';
import type { FlowDeps } from '../../service.js';
import {
  deviceName,
  lowestFreeDevice,
  MAX_DEVICE_ID,
  type VolumeRow,
  volumeFamily,
  volumeGone,
} from './model.js';
import { releaseVm, runningHost, type VolumeVmOp } from './vm-guard.js';

export type Ctx<P> = StepContext<P, FlowDeps>;
type VmOf<P> = (ctx: Ctx<P>) => string | null | undefined;

export async function volumeOf(ctx: Ctx<unknown>): Promise<VolumeRow> {
  const uuid = ctx.job.resourceUuid!;
  const row = await ctx.db.selectFrom('volumes').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw volumeGone(uuid);
  return row;
}

const refuse = (ctx: Ctx<unknown>, err: CloudError): never => {
  ctx.data.refused = true;
  throw err;
};

/** Done at admission (the VM was taken with the job); its rollback gives the VM back. */
export function claimVmStep<P>(op: VolumeVmOp, vmOf: VmOf<P>): FlowStep<P, FlowDeps> {
  return {
    name: 'claim-vm',
    describe: 'hold the VM',
    async run() {},
    async rollback(ctx) {
      const vm = vmOf(ctx);
      if (vm) await releaseVm(ctx.db, vm, op);
    },
  };
}

export function releaseVmStep<P>(op: VolumeVmOp, vmOf: VmOf<P>): FlowStep<P, FlowDeps> {
  return {
    name: 'release-vm',
    describe: 'release the VM',
    async run(ctx) {
      const vm = vmOf(ctx);
      if (vm) await releaseVm(ctx.db, vm, op);
    },
  };
}

/** Puts the volume on the VM at the lowest free device id ≥ 1 (unique per VM by index). */
export function attachDeviceStep<P>(vmOf: VmOf<P>): FlowStep<P, FlowDeps> {
  return {
    name: 'attach-device',
    describe: 'give the volume a device on the VM',
    async run(ctx) {
      const vmUuid = vmOf(ctx);
      if (!vmUuid) return;
      const uuid = ctx.job.resourceUuid!;
      for (let attempt = 0; ; attempt++) {
        try {
          ctx.data.deviceId = await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
            const v = await tx
              .selectFrom('volumes')
              .selectAll()
              .where('uuid', '=', uuid)
              .forUpdate()
              .executeTakeFirst();
            if (!v) return refuse(ctx, volumeGone(uuid));
            if (v.state !== 'Ready' || v.vmUuid !== null) {
              return refuse(
                ctx,
                new CloudError(
                  'Conflict',
                  'VOLUME_CHANGED',
                  `volume ${uuid} changed while waiting: it is ${v.state}${v.vmUuid ? `, attached to vm ${v.vmUuid}` : ''}`,
                  { details: { state: v.state, vmUuid: v.vmUuid } },
                ),
              );
            }
            const taken = await tx
              .selectFrom('volumes')
              .select('deviceId')
              .where('vmUuid', '=', vmUuid)
              .execute();
            const id = lowestFreeDevice(taken.map((t) => t.deviceId));
            if (id === null) {
              return refuse(
                ctx,
                new CloudError(
                  'Conflict',
                  'VM_DEVICES_FULL',
                  `vm ${vmUuid} has no free device (at most ${MAX_DEVICE_ID} volumes)`,
                  {
                    details: { vmUuid, max: MAX_DEVICE_ID },
                  },
                ),
              );
            }
            await tx
              .updateTable('volumes')
              .set({ vmUuid, deviceId: id, updatedAt: new Date() })
              .where('uuid', '=', uuid)
              .execute();
            batch.add({
              ...resourceEvent(volumeFamily, v, 'attached', {
                vmUuid,
                deviceId: id,
                deviceName: deviceName(id),
              }),
              jobUuid: ctx.job.uuid,
            });
            return id;
          });
          return;
        } catch (err) {
          // another chain (a VM create's data disks) took the same id at the same instant: pick again
          if (isUniqueViolation(err) && attempt < 5) continue;
          throw err;
        }
      }
    },
    async rollback(ctx) {
      const vmUuid = vmOf(ctx);
      if (!vmUuid || ctx.data.refused) return;
      await detachRecord(ctx, vmUuid, 'rolled back');
    },
  };
}

async function detachRecord(
  ctx: Ctx<unknown>,
  vmUuid: string,
  reason?: string,
): Promise<number | null | undefined> {
  const uuid = ctx.job.resourceUuid!;
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    const v = await tx
      .selectFrom('volumes')
      .selectAll()
      .where('uuid', '=', uuid)
      .forUpdate()
      .executeTakeFirst();
    if (!v || v.vmUuid !== vmUuid) return undefined;
    await tx
      .updateTable('volumes')
      .set({ vmUuid: null, deviceId: null, updatedAt: new Date() })
      .where('uuid', '=', uuid)
      .execute();
    batch.add({
      ...resourceEvent(volumeFamily, v, 'detached', {
        vmUuid,
        deviceId: v.deviceId,
        ...(reason ? { reason } : {}),
      }),
      jobUuid: ctx.job.uuid,
    });
    return v.deviceId;
  });
}

/** Takes the volume off the VM's device list; its rollback puts it back at the same device. */
export function detachDeviceStep<P extends { deviceId?: number | null }>(
  vmOf: VmOf<P>,
): FlowStep<P, FlowDeps> {
  return {
    name: 'detach-device',
    describe: 'take the volume off the VM',
    async run(ctx) {
      const vmUuid = vmOf(ctx);
      if (!vmUuid) return;
      const was = await detachRecord(ctx, vmUuid);
      if (was === undefined) {
        refuse(
          ctx,
          new CloudError(
            'Conflict',
            'VOLUME_CHANGED',
            `volume ${ctx.job.resourceUuid} is no longer attached to vm ${vmUuid}`,
            {
              details: { vmUuid },
            },
          ),
        );
      }
      ctx.data.deviceId = was;
    },
    async rollback(ctx) {
      const vmUuid = vmOf(ctx);
      if (!vmUuid || ctx.data.refused) return;
      const deviceId = (ctx.data.deviceId as number | undefined) ?? ctx.params.deviceId ?? null;
      const uuid = ctx.job.resourceUuid!;
      await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
        const v = await tx
          .updateTable('volumes')
          .set({ vmUuid, deviceId, updatedAt: new Date() })
          .where('uuid', '=', uuid)
          .where('vmUuid', 'is', null)
          .returningAll()
          .executeTakeFirst();
        if (v)
          batch.add({
            ...resourceEvent(volumeFamily, v, 'attached', { vmUuid, deviceId, reason: 'rolled back' }),
            jobUuid: ctx.job.uuid,
          });
      });
    },
  };
}

async function plug(ctx: Ctx<unknown>, vmUuid: string): Promise<void> {
  const host = await runningHost(ctx.db, vmUuid);
  if (!host) return;
  const v = await volumeOf(ctx);
  if (v.vmUuid !== vmUuid || v.deviceId === null) return;
  await ctx.deps.drivers.send(host, 'vm.attach-volume', {
    vmUuid,
    volume: { uuid: v.uuid, size: v.size, format: v.format, deviceId: v.deviceId, path: v.path ?? '' },
  });
}

async function unplug(ctx: Ctx<unknown>, vmUuid: string): Promise<void> {
  const host = await runningHost(ctx.db, vmUuid);
  if (host)
    await ctx.deps.drivers.send(host, 'vm.detach-volume', { vmUuid, volumeUuid: ctx.job.resourceUuid! });
}

/** Hot-plugs the volume into a Running or Paused VM (vm.attach-volume). */
export function hotPlugStep<P>(vmOf: VmOf<P>): FlowStep<P, FlowDeps> {
  return {
    name: 'hot-plug',
    describe: 'plug the volume into the running VM',
    async run(ctx) {
      const vmUuid = vmOf(ctx);
      if (vmUuid) await plug(ctx, vmUuid);
    },
    async rollback(ctx) {
      const vmUuid = vmOf(ctx);
      if (vmUuid) await unplug(ctx, vmUuid);
    },
  };
}

/** Unplugs the volume from a Running or Paused VM (vm.detach-volume); the rollback plugs it back. */
export function unplugStep<P>(vmOf: VmOf<P>): FlowStep<P, FlowDeps> {
  return {
    name: 'unplug',
    describe: 'unplug the volume from the running VM',
    async run(ctx) {
      const vmUuid = vmOf(ctx);
      if (vmUuid) await unplug(ctx, vmUuid);
    },
    async rollback(ctx) {
      const vmUuid = vmOf(ctx);
      if (vmUuid) await plug(ctx, vmUuid);
    },
  };
}
