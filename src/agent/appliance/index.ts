/**
 * Appliance VMs on a real host: a VM whose spec carries `appliance` (a virtual router's appliance,
 * src/contract/agent.ts) boots no QEMU here — the router is a network namespace the network part
 * makes (router.apply-config) — so this wraps the agent's vm.* handlers:
 *
 * - vm.start records the appliance (records.ts: the record outlives the agent) and makes sure the
 *   router's namespace exists (empty when it was missing: the management side then sends the
 *   whole configuration); answers Running;
 * - vm.list adds the appliances: Running while the namespace exists, Stopped when recorded
 *   stopped or when the namespace is gone (a host reboot loses it);
 * - vm.stop / vm.destroy remove the router (dnsmasq, nft table, veths, namespace, state dir);
 *   destroy drops the record too; vm.reboot removes and remakes the namespace empty (router.status
 *   then answers 0, and the router's reboot chain sends the whole configuration again);
 * - router.apply-config for a router whose appliance is recorded Stopped here realises nothing
 *   (`applied: false`): a stopped appliance serves nothing, and its next start gets the whole
 *   configuration again (virtual-router/start.ts);
 * - pause, resume, volume and NIC hot-plug and live migration refuse with HOST_APPLIANCE_UNSUPPORTED
 *   (the management side never sends them to a router on its own; an admin can ask).
 * Every command is idempotent; a VM this host has no appliance record of goes to the QEMU part.
 */
import type { AgentCommand, SimVmState } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { AgentHandler, AgentHandlers, AgentPeerHandlers } from '../handlers.js';
import type { RouterNamespaces } from '../network/index.js';
import { checkObject, checkVmUuid } from '../qemu/layout.js';
import { type ApplianceRecord, ApplianceRecords, checkAppliance } from './records.js';

export interface ApplianceLog {
  info(obj: object, msg?: string): void;
}

export interface ApplianceOptions {
  stateDir: string;
  routers: RouterNamespaces;
  log: ApplianceLog;
}

type Handlers = AgentHandlers & AgentPeerHandlers;

/** the per-VM commands that do not apply to a router realised as a namespace */
export const UNSUPPORTED = [
  'vm.pause',
  'vm.resume',
  'vm.attach-volume',
  'vm.detach-volume',
  'vm.resize-volume',
  'vm.attach-nic',
  'vm.detach-nic',
  'vm.migrate',
] as const satisfies readonly AgentCommand[];

export function unsupported(
  command: string,
  record: Pick<ApplianceRecord, 'vmUuid' | 'routerUuid'>,
): CloudError {
  const remedy =
    command === 'vm.migrate'
      ? 'to move it, stop it and start it on another host (its configuration is sent there again)'
      : 'only start, stop, reboot and destroy apply to it';
  return new CloudError(
    'Invalid',
    'HOST_APPLIANCE_UNSUPPORTED',
    `${command}: vm ${record.vmUuid} is the appliance of virtual router ${record.routerUuid}, realised on this host as a network namespace, not a guest; ${remedy}`,
    { details: { command, vmUuid: record.vmUuid, routerUuid: record.routerUuid } },
  );
}

/** what vm.list reports of an appliance */
export function applianceState(record: ApplianceRecord, namespacePresent: boolean): SimVmState {
  return record.state === 'Running' && namespacePresent ? 'Running' : 'Stopped';
}

function missing(command: string): never {
  throw new CloudError('NotFound', 'AGENT_COMMAND_UNKNOWN', `no handler for ${command}`);
}

const done = {} as Record<string, never>;

export function withAppliances<H extends Handlers>(inner: H, opts: ApplianceOptions): H {
  const records = new ApplianceRecords(opts.stateDir);
  const { routers, log } = opts;
  const forward = <C extends AgentCommand>(command: C): AgentHandler<C> =>
    (inner[command] as AgentHandler<C> | undefined) ?? (() => missing(command));

  /** the appliance's own handling when `vmUuid` is an appliance here, else the QEMU part's */
  const dispatch = <C extends AgentCommand>(
    command: C,
    own: (record: ApplianceRecord) => Promise<void>,
  ): AgentHandler<C> => {
    const fallback = forward(command);
    return async (request) => {
      const vmUuid = checkVmUuid((request as { vmUuid?: unknown } | null)?.vmUuid);
      const handled = await records.serial(vmUuid, async () => {
        const record = await records.get(vmUuid);
        if (record === undefined) return false;
        await own(record);
        return true;
      });
      return handled ? (done as never) : fallback(request);
    };
  };

  const handlers: H = {
    ...inner,
    'vm.start': async (request) => {
      const vm = checkObject(request?.vm, 'vm');
      if (vm.appliance === undefined) return forward('vm.start')(request);
      const { routerUuid } = checkAppliance(vm.appliance);
      const vmUuid = checkVmUuid(vm.uuid, 'vm.uuid');
      await records.serial(vmUuid, async () => {
        const before = await records.get(vmUuid);
        if (before && before.routerUuid !== routerUuid) await routers.remove(before.routerUuid);
        // recorded first: a namespace made and then a failure still leaves what destroy removes
        await records.put({ vmUuid, routerUuid, state: 'Running' });
        await routers.ensure(routerUuid);
      });
      log.info({ vmUuid, routerUuid }, 'appliance started (router namespace, no QEMU)');
      return { powerState: 'Running' };
    },
    'vm.stop': dispatch('vm.stop', async (r) => {
      await routers.remove(r.routerUuid);
      if (r.state !== 'Stopped') await records.put({ ...r, state: 'Stopped' });
      log.info({ vmUuid: r.vmUuid, routerUuid: r.routerUuid }, 'appliance stopped (router removed)');
    }),
    'vm.destroy': async (request) => {
      const vmUuid = checkVmUuid(request?.vmUuid);
      await records.serial(vmUuid, async () => {
        const r = await records.get(vmUuid);
        if (r === undefined) return;
        await routers.remove(r.routerUuid);
        await records.drop(vmUuid);
        log.info({ vmUuid, routerUuid: r.routerUuid }, 'appliance destroyed (router removed)');
      });
      // and any QEMU definition of the same VM (an appliance an older agent booted as a guest);
      // the QEMU part answers success for a VM it does not have
      return forward('vm.destroy')(request);
    },
    'vm.reboot': dispatch('vm.reboot', async (r) => {
      if (r.state === 'Stopped') {
        throw new CloudError(
          'Conflict',
          'AGENT_VM_NOT_RUNNING',
          `VM ${r.vmUuid} is not running on this host`,
          {
            details: { vmUuid: r.vmUuid },
          },
        );
      }
      await routers.reset(r.routerUuid);
      log.info({ vmUuid: r.vmUuid, routerUuid: r.routerUuid }, 'appliance rebooted (router namespace empty)');
    }),
    'vm.list': async (request) => {
      const appliances = await records.all();
      const own = new Set(appliances.map((a) => a.vmUuid));
      const { vms } = await forward('vm.list')(request);
      const listed = vms.filter((v) => !own.has(v.uuid));
      for (const a of appliances)
        listed.push({ uuid: a.vmUuid, state: applianceState(a, await routers.present(a.routerUuid)) });
      return { vms: listed };
    },
    'router.apply-config': async (request) => {
      const routerUuid = request?.config?.routerUuid;
      const record = (await records.all()).find((a) => a.routerUuid === routerUuid);
      if (record === undefined) return forward('router.apply-config')(request);
      // in turn with the appliance's start/stop: a config never remakes a router just stopped
      return records.serial(record.vmUuid, async () => {
        const now = await records.get(record.vmUuid);
        if (now?.state === 'Stopped' && now.routerUuid === routerUuid) {
          log.info({ routerUuid, vmUuid: now.vmUuid }, 'router config not applied: its appliance is stopped');
          return { applied: false };
        }
        return forward('router.apply-config')(request);
      });
    },
    'vm.prepare-migration': async (request) => {
      const vm = checkObject(request?.vm, 'vm');
      if (vm.appliance !== undefined) {
        const { routerUuid } = checkAppliance(vm.appliance);
        throw unsupported('vm.migrate', { vmUuid: String(vm.uuid), routerUuid });
      }
      const prepare = inner['vm.prepare-migration'];
      return prepare ? prepare(request) : missing('vm.prepare-migration');
    },
  };
  for (const command of UNSUPPORTED) {
    (handlers as Record<string, unknown>)[command] = dispatch(command, async (r) => {
      throw unsupported(command, r);
    });
  }
  return handlers;
}
