/**
 * What the VM chains share beyond their step context: the node's candidate snapshot, and the
 * small lookups every chain needs (how to address a host, what a VM looks like to a hypervisor).
 */
import type { NicSpec, VmSpec, VolumeSpec } from '../../../contract/agent.js';
import type { Db } from '../../../db/pool.js';
import type { HostAddress } from '../../../drivers/port.js';
import type { StepContext } from '../../../engine/flow.js';
import type { FlowDeps } from '../../service.js';
import { nicSpecs } from '../vm-nic/nics.js';
import type { CandidateSnapshot } from './candidates.js';
import { withGuestConfig } from './guest-config.js';
import { addressOf } from './placement.js';
import { vmRow } from './transitions.js';

export interface VmRuntime {
  snapshot: CandidateSnapshot;
}

export type VmCtx<P> = StepContext<P, FlowDeps>;

export async function hostAddress(rt: VmRuntime, db: Db, hostUuid: string): Promise<HostAddress> {
  return rt.snapshot.address(hostUuid) ?? addressOf(db, hostUuid);
}

/** The volumes attached to a VM, as a hypervisor needs them (root first). */
export async function attachedVolumes(db: Db, vmUuid: string): Promise<VolumeSpec[]> {
  const rows = await db
    .selectFrom('volumes')
    .select(['uuid', 'size', 'format', 'deviceId', 'path'])
    .where('vmUuid', '=', vmUuid)
    .where('state', '<>', 'Deleted')
    .orderBy('deviceId')
    .execute();
  return rows.map((v) => ({
    uuid: v.uuid,
    size: v.size,
    format: v.format,
    deviceId: v.deviceId ?? 0,
    path: v.path ?? '',
  }));
}

export function vmSpec(
  vm: { uuid: string; name: string; cpu: number; memory: number },
  volumes: VolumeSpec[],
  nics: NicSpec[] = [],
  /** the router whose appliance this VM is (a real host realises it as a namespace, not a guest) */
  applianceOf?: string | null,
): VmSpec {
  return {
    uuid: vm.uuid,
    name: vm.name,
    cpu: vm.cpu,
    memory: vm.memory,
    volumes,
    nics,
    ...(applianceOf ? { appliance: { type: 'virtual-router' as const, routerUuid: applianceOf } } : {}),
  };
}

/** The router a VM is the appliance of (recorded in its `placement` at admission), if any. */
async function applianceOf(db: Db, vmUuid: string): Promise<string | null> {
  const row = await db.selectFrom('vms').select('placement').where('uuid', '=', vmUuid).executeTakeFirst();
  const of = (row?.placement as { applianceOf?: unknown } | undefined)?.applianceOf;
  return typeof of === 'string' ? of : null;
}

/** What `vm.start` needs of an existing VM: its volumes, its NICs and its guest's config, read together. */
export async function startSpec(
  db: Db,
  vm: { uuid: string; name: string; cpu: number; memory: number },
): Promise<VmSpec> {
  const [volumes, nics, appliance] = await Promise.all([
    attachedVolumes(db, vm.uuid),
    nicSpecs(db, vm.uuid),
    applianceOf(db, vm.uuid),
  ]);
  return withGuestConfig(db, vmSpec(vm, volumes, nics, appliance));
}

/**
 * Undoes taking a VM off its host (a stop or a destroy that failed later): a VM that was Running
 * or Paused is started again on the host it still holds, and paused again if it was.
 */
export async function restartOnHost(
  rt: VmRuntime,
  ctx: VmCtx<{ uuid: string; fromState?: string }>,
): Promise<void> {
  if (ctx.params.fromState !== 'Running' && ctx.params.fromState !== 'Paused') return;
  const vm = await vmRow(ctx.db, ctx.params.uuid);
  if (!vm.hostUuid) return;
  const host = await hostAddress(rt, ctx.db, vm.hostUuid);
  await ctx.deps.drivers.send(host, 'vm.start', { vm: await startSpec(ctx.db, vm) });
  if (ctx.params.fromState === 'Paused') await ctx.deps.drivers.send(host, 'vm.pause', { vmUuid: vm.uuid });
}

/**
 * A host keeps the definition only of the VMs placed on it. A VM that stopped on one host (or
 * whose guest died there) and then starts on another, or is destroyed while on none, leaves its
 * old definition (on a real host: its spec, serial log, TAPs) on the host it last ran on: that
 * host is told to forget it. Best effort: a host that does not answer keeps it until the
 * reconciler finds it (a Destroyed or unknown VM it reports is destroyed there). A host that is
 * not Connected is not asked (a fenced host's BMC has it off; waiting on it would delay an HA
 * restart by the command's deadline): the reconciler destroys the copy if it comes back.
 */
export async function dropStaleDefinition(
  rt: VmRuntime,
  ctx: VmCtx<unknown>,
  vm: { uuid: string; lastHostUuid: string | null },
  current: string | null,
): Promise<void> {
  if (!vm.lastHostUuid || vm.lastHostUuid === current) return;
  const last = await ctx.db
    .selectFrom('hosts')
    .select('status')
    .where('uuid', '=', vm.lastHostUuid)
    .executeTakeFirst();
  if (last?.status !== 'Connected') return;
  try {
    await ctx.deps.drivers.send(await hostAddress(rt, ctx.db, vm.lastHostUuid), 'vm.destroy', {
      vmUuid: vm.uuid,
    });
  } catch (err) {
    ctx.deps.log.warn({ err, vm: vm.uuid, host: vm.lastHostUuid }, 'could not drop a stale VM definition');
  }
}
