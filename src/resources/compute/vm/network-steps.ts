/**
 * The VM chains' networking steps (docs/network.md "VM NICs"): a VM's NICs are carried by the
 * host it runs on (`vm_nics.host_uuid`), so every chain that puts a VM on a host, moves it or
 * takes it off one moves its NICs in the same step and re-syncs the hosts involved and the
 * routers of its virtual-router L3s. Each step's rollback moves them back and re-syncs again;
 * both read where the VM is from the database, and syncs carry full state, so both are
 * idempotent. A VM without NICs costs one UPDATE that matches nothing and no host command.
 */
import type { FlowStep, StepContext } from '../../../engine/flow.js';
import { ensureVirtualRouters } from '../../network/virtual-router/ensure.js';
import type { FlowDeps } from '../../service.js';
import { placeNics, syncNetwork } from '../vm-nic/nics.js';
import type { VmRow } from './model.js';
import { vmRow } from './transitions.js';

type Ctx<P> = StepContext<P, FlowDeps>;

/** The virtual router a VM is the appliance of (it needs no router for its own NICs). */
export function applianceOf(vm: Pick<VmRow, 'placement'>): string | null {
  const p = vm.placement as { applianceOf?: string } | null;
  return p?.applianceOf ?? null;
}

/**
 * Puts the VM's NICs on `host` (null: on no host) and re-syncs: the host they go to (which must
 * succeed), the hosts they leave (best-effort: a dead host re-syncs on reconnect) and the routers
 * of their virtual-router L3s — made first when they go to a host, unless the VM is an appliance.
 */
export async function moveNics<P>(
  ctx: Ctx<P>,
  vm: Pick<VmRow, 'uuid' | 'placement'>,
  host: string | null,
  also: { leaving?: string[] } = {},
): Promise<void> {
  const moved = await placeNics(ctx.db, vm.uuid, host);
  if (moved.l3NetworkUuids.length === 0) return; // no NIC: nothing serves it
  if (host && moved.routed.length > 0 && !applianceOf(vm)) await ensureVirtualRouters(ctx, moved.routed);
  await syncNetwork(ctx.db, ctx.deps, {
    hosts: [host],
    leaving: [...moved.before, ...(also.leaving ?? [])],
    routed: moved.routed,
  });
}

/**
 * A step that moves the VM's NICs to `to(vm)` and, on rollback, to `back(vm)` (both read from
 * the VM row as it is then). `when` limits the rollback to the chains whose VM had its NICs
 * placed before (e.g. a stop of a Running VM).
 */
export function nicsStep<P extends { uuid: string }>(o: {
  name: string;
  describe: string;
  to: (vm: VmRow, ctx: Ctx<P>) => string | null;
  back: (vm: VmRow, ctx: Ctx<P>) => string | null;
  /** hosts to re-sync best-effort too (e.g. a migration's target on rollback) */
  alsoLeaving?: (vm: VmRow, ctx: Ctx<P>) => string[];
}): FlowStep<P, FlowDeps> {
  return {
    name: o.name,
    describe: o.describe,
    async run(ctx) {
      const vm = await vmRow(ctx.db, ctx.params.uuid);
      await moveNics(ctx, vm, o.to(vm, ctx));
    },
    async rollback(ctx) {
      const vm = await vmRow(ctx.db, ctx.params.uuid);
      await moveNics(ctx, vm, o.back(vm, ctx), { leaving: o.alsoLeaving?.(vm, ctx) ?? [] });
    },
  };
}

/**
 * The step of a stop or a destroy that takes the VM's NICs off its host; undone: back on the
 * host it still holds when it was Running or Paused.
 */
export function leaveHostNetworkStep<P extends { uuid: string; fromState?: string }>(): FlowStep<
  P,
  FlowDeps
> {
  return nicsStep<P>({
    name: 'release-network-services',
    describe: 'remove the vm from its host’s network and routers',
    to: () => null,
    back: (vm, ctx) =>
      ctx.params.fromState === 'Running' || ctx.params.fromState === 'Paused' ? vm.hostUuid : null,
  });
}
