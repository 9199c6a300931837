/**
 * The network part of nimbus-agent: realises on this host what the management side's host sync
 * and router sync send (docs/network.md) — Linux bridges with VXLAN (unicast FDB) uplinks,
 * per-host dnsmasq DHCP in namespaces, security groups in nftables, virtual routers as
 * namespaces with nftables NAT — and the TAP plugger the QEMU part uses.
 *
 * Invariants:
 * - acts on the network namespace the agent process runs in (the agent must share the
 *   machine's mount namespace, see netns.ts);
 * - everything it makes carries `namePrefix` (interfaces ≤ 15 characters, from UUID tails), or is
 *   recorded in its state (bridges), so `cleanupAll` removes exactly its own things;
 * - full-state commands are applied only when their version is newer than the last applied one
 *   of that part (per router for routers), kept in memory and in `<stateDir>/network-state.json`
 *   so a restarted agent keeps refusing stale states; a failed apply does not advance it;
 * - one apply at a time per part.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CloudError } from '../../kernel/errors.js';
import type { AgentHandlers } from '../handlers.js';
import { applyBridges, removeBridge } from './bridges.js';
import type { NetworkLog, PartContext } from './context.js';
import { applyDhcp, removeAllDhcp } from './dhcp.js';
import { deleteLink, links, run } from './exec.js';
import { namesFor } from './names.js';
import { deleteNs, ensureNs, listNamespaces } from './netns.js';
import { applyRouter, removeAllRouters, removeRouter, routerPresent } from './router.js';
import { applySg, removeSgTables } from './security-groups.js';
import { NetworkState } from './state.js';
import { type TapPlugger, tapPlugger } from './tap.js';

export type { NetworkLog } from './context.js';
export { type Names, namesFor, uuidTail } from './names.js';
export type { TapPlugger } from './tap.js';

export interface NetworkPartOptions {
  /** short (1–5 lowercase letters/digits), unique per agent on the machine */
  namePrefix: string;
  /** where the part keeps its state, dnsmasq files and pidfiles */
  stateDir: string;
  /** this host's VXLAN tunnel endpoint (an address of the underlay) */
  vtepIp?: string;
  log?: NetworkLog;
}

/**
 * A router's namespace as its appliance VM's lifecycle needs it (src/agent/appliance/): each call
 * runs in turn with the router's `router.apply-config`, and a namespace made or removed here has
 * no configuration (router.status answers 0, so the management side sends the whole of it again).
 */
export interface RouterNamespaces {
  /** makes the namespace when missing (empty); one that exists keeps its configuration */
  ensure(routerUuid: string): Promise<void>;
  /** removes its dnsmasq, nft table, veths, namespace and state directory */
  remove(routerUuid: string): Promise<void>;
  /** remove, then ensure: the router comes back empty */
  reset(routerUuid: string): Promise<void>;
  present(routerUuid: string): Promise<boolean>;
}

export interface NetworkPart {
  handlers: AgentHandlers;
  plugger: TapPlugger;
  routers: RouterNamespaces;
  /** removes every namespace, bridge, VXLAN, TAP, dnsmasq and nft table this part made */
  cleanupAll(): Promise<void>;
}

const silent: NetworkLog = { info() {}, warn() {} };

/** a request field that must be a non-empty string (a uuid), refused by name otherwise */
function checkText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 128) {
    throw new CloudError('Invalid', 'AGENT_REQUEST_INVALID', `${field} must be a non-empty string`, {
      details: { field },
    });
  }
  return value;
}

/** the router a router.apply-config names, checked before anything is queued under its name */
function routerOf(version: unknown, config: unknown): string {
  checkVersion(version);
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new CloudError('Invalid', 'AGENT_REQUEST_INVALID', 'config must be an object', {
      details: { field: 'config' },
    });
  }
  return checkText((config as { routerUuid?: unknown }).routerUuid, 'config.routerUuid');
}

function checkVersion(version: unknown): void {
  if (!Number.isSafeInteger(version) || (version as number) < 1) {
    throw new CloudError(
      'Invalid',
      'HOST_NETWORK_VERSION_INVALID',
      `version must be a positive integer, got ${version}`,
      {
        details: { field: 'version' },
      },
    );
  }
}

export function createNetworkPart(opts: NetworkPartOptions): NetworkPart {
  const names = namesFor(opts.namePrefix);
  const state = new NetworkState(opts.stateDir);
  let loaded: Promise<void> | undefined;
  const ctx: PartContext = {
    names,
    state,
    stateDir: opts.stateDir,
    vtepIp: opts.vtepIp,
    log: opts.log ?? silent,
    ready: () => {
      loaded ??= state.load();
      return loaded;
    },
  };
  const ready = ctx.ready;

  /** applies a full state of one part when its version is newer */
  const versioned = (part: 'bridges' | 'dhcp' | 'sg', version: number, apply: () => Promise<void>) =>
    state.serial(part, async () => {
      checkVersion(version);
      await ready();
      if (version <= state.get().versions[part]) return { applied: false };
      await apply();
      state.get().versions[part] = version;
      await state.save();
      return { applied: true };
    });

  const handlers: AgentHandlers = {
    'network.ensure-bridges': (r) => versioned('bridges', r.version, () => applyBridges(ctx, r.bridges)),
    'dhcp.set-entries': (r) => versioned('dhcp', r.version, () => applyDhcp(ctx, r.networks)),
    'sg.apply': (r) => versioned('sg', r.version, () => applySg(ctx, r.nics)),
    'router.apply-config': async (r) =>
      state.serial(`router:${routerOf(r.version, r.config)}`, async () => {
        await ready();
        const uuid = r.config.routerUuid;
        const have = (await routerPresent(ctx, uuid)) ? (state.get().routers[uuid] ?? 0) : 0;
        if (r.version <= have) return { applied: false };
        await applyRouter(ctx, r.config);
        state.get().routers[uuid] = r.version;
        await state.save();
        return { applied: true };
      }),
    'router.status': async (r) => {
      checkText(r.routerUuid, 'routerUuid');
      await ready();
      const present = await routerPresent(ctx, r.routerUuid);
      return { version: present ? (state.get().routers[r.routerUuid] ?? 0) : 0 };
    },
  };

  /** forgets the router's version: what its namespace holds now is no configuration */
  const forget = async (uuid: string) => {
    if (state.get().routers[uuid] === undefined) return;
    delete state.get().routers[uuid];
    await state.save();
  };
  const routerStep = (uuid: string, fn: () => Promise<void>) =>
    state.serial(`router:${uuid}`, async () => {
      await ready();
      await fn();
    });
  const routers: RouterNamespaces = {
    ensure: (uuid) =>
      routerStep(uuid, async () => {
        if (await routerPresent(ctx, uuid)) return;
        await forget(uuid);
        await ensureNs(names.routerNs(uuid));
      }),
    remove: (uuid) =>
      routerStep(uuid, async () => {
        await removeRouter(ctx, uuid);
        await forget(uuid);
      }),
    reset: (uuid) =>
      routerStep(uuid, async () => {
        await removeRouter(ctx, uuid);
        await forget(uuid);
        await ensureNs(names.routerNs(uuid));
      }),
    present: (uuid) => routerPresent(ctx, uuid),
  };

  const cleanupAll = async () => {
    await ready();
    await removeAllRouters(ctx);
    await removeAllDhcp(ctx);
    await removeSgTables(ctx);
    await run(
      'nft',
      ['-f', '-'],
      `table bridge ${names.dhcpTable}\ndelete table bridge ${names.dhcpTable}\n`,
    );
    for (const b of Object.keys(state.get().bridges)) await removeBridge(ctx, b);
    for (const l of await links()) if (names.ownsLink(l.ifname)) await deleteLink(l.ifname);
    for (const ns of await listNamespaces()) if (names.ownsNs(ns)) await deleteNs(ns);
    const s = state.get();
    s.taps = {};
    s.versions = { bridges: 0, dhcp: 0, sg: 0 };
    s.routers = {};
    s.bridges = {};
    await rm(join(opts.stateDir, 'dhcp'), { recursive: true, force: true });
    await state.save();
  };

  return { handlers, plugger: tapPlugger(ctx), routers, cleanupAll };
}
