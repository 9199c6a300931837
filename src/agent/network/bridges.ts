/**
 * `network.ensure-bridges`: the host's whole set of L2 bridges.
 * - no-vlan: the bridge enslaves `physicalInterface` (its addresses and routes move to the bridge,
 *   as ZStack's agent does, so a host whose management address is on that interface keeps it);
 * - vlan: the 802.1Q sub-interface `<if>.<vlan>` is enslaved; a kernel without 802.1Q (this CI's
 *   has none) answers HOST_VLAN_UNSUPPORTED naming CONFIG_VLAN_8021Q;
 * - vxlan: a VXLAN device (id = vni, dstport 4789, local = this host's VTEP, nolearning) is
 *   enslaved, with one all-zeros unicast FDB entry per peer VTEP (`peers`, exactly: stale
 *   ones are removed) — flooding by head-end replication, no multicast.
 * A bridge not listed (that this part made) is removed with its VXLAN device; its uplink is
 * released (addresses moved back). TAPs of running VMs are not deleted with it: the kernel just
 * detaches them, they belong to the QEMU part (removeTap), and `ensureTap` or a later
 * ensure-bridges re-attaches them. The management side removes a bridge only when no NIC of the
 * host is on it, so a TAP there is a leftover anyway.
 */
import type { BridgeSpec } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { PartContext } from './context.js';
import { deleteLink, ip, ipJson, link, linkExists, links, run, runRaw } from './exec.js';

const VXLAN_PORT = 4789;
const ZERO_MAC = '00:00:00:00:00:00';

export function validateBridges(bridges: BridgeSpec[]): void {
  if (!Array.isArray(bridges)) {
    throw new CloudError('Invalid', 'HOST_BRIDGE_SPEC_INVALID', 'bridges: a list is required', {
      details: { field: 'bridges' },
    });
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  bridges.forEach((b, i) => {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(b.bridgeName))
      problems.push(`bridges[${i}].bridgeName: not a valid interface name`);
    if (seen.has(b.bridgeName)) problems.push(`bridges[${i}].bridgeName: listed twice`);
    seen.add(b.bridgeName);
    if (b.type !== 'vxlan' && !b.physicalInterface)
      problems.push(`bridges[${i}].physicalInterface: required for ${b.type}`);
    if (b.type === 'vlan' && !(Number.isInteger(b.vlan) && (b.vlan ?? 0) >= 1 && (b.vlan ?? 0) <= 4094))
      problems.push(`bridges[${i}].vlan: 1–4094 required`);
    if (b.type === 'vxlan' && !(Number.isInteger(b.vni) && (b.vni ?? 0) >= 1 && (b.vni ?? 0) <= 16777215))
      problems.push(`bridges[${i}].vni: 1–16777215 required`);
    if (!(Number.isInteger(b.mtu) && b.mtu >= 68 && b.mtu <= 65535))
      problems.push(`bridges[${i}].mtu: 68–65535`);
  });
  if (problems.length > 0) {
    throw new CloudError('Invalid', 'HOST_BRIDGE_SPEC_INVALID', problems.join('; '), {
      details: { problems },
    });
  }
}

export async function applyBridges(ctx: PartContext, bridges: BridgeSpec[]): Promise<void> {
  validateBridges(bridges);
  // wanted first: a refused bridge (e.g. a VLAN on a kernel without 802.1Q) leaves the others up
  const wanted = new Set(bridges.map((b) => b.bridgeName));
  for (const spec of bridges) await ensureBridge(ctx, spec, wanted);
  for (const name of Object.keys(ctx.state.get().bridges)) {
    if (!wanted.has(name)) await removeBridge(ctx, name);
  }
}

async function ensureBridge(ctx: PartContext, spec: BridgeSpec, wanted: Set<string>): Promise<void> {
  const name = spec.bridgeName;
  const existing = await link(name);
  if (existing && existing.linkinfo?.info_kind !== 'bridge') {
    throw new CloudError(
      'Conflict',
      'HOST_BRIDGE_NAME_TAKEN',
      `${name} exists on the host and is not a bridge`,
      {
        details: { bridgeName: name, kind: existing.linkinfo?.info_kind ?? null },
      },
    );
  }
  if (!existing)
    await ip(['link', 'add', 'name', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  const record = ctx.state.get().bridges[name] ?? { uplink: null, uplinkMade: false };
  ctx.state.get().bridges[name] = record;
  await ctx.state.save();
  await ip(['link', 'set', 'dev', name, 'mtu', String(spec.mtu)]);

  let uplink: string;
  let uplinkMade = false;
  if (spec.type === 'vxlan') {
    uplink = await ensureVxlan(ctx, spec);
    uplinkMade = true;
  } else if (spec.type === 'vlan') {
    uplink = await ensureVlan(spec);
    uplinkMade = true;
  } else {
    uplink = spec.physicalInterface as string;
    if (!(await linkExists(uplink))) {
      throw new CloudError('Unavailable', 'HOST_INTERFACE_MISSING', `the host has no interface ${uplink}`, {
        details: { physicalInterface: uplink, bridgeName: name },
      });
    }
  }
  // a different uplink than before (the spec changed): let the old one go
  if (record.uplink && record.uplink !== uplink)
    await releaseUplink(ctx, name, record.uplink, record.uplinkMade);
  let up = await link(uplink);
  const oldMaster = up?.master;
  // the interface moves from a bridge of ours that is going away (the L2's bridge was renamed)
  if (oldMaster && oldMaster !== name && !wanted.has(oldMaster) && ctx.state.get().bridges[oldMaster]) {
    await releaseUplink(ctx, oldMaster, uplink, false);
    const rec = ctx.state.get().bridges[oldMaster];
    if (rec) rec.uplink = null;
    up = await link(uplink);
  }
  if (up?.master !== name) {
    if (up?.master) {
      throw new CloudError('Conflict', 'HOST_INTERFACE_BUSY', `${uplink} is already a port of ${up.master}`, {
        details: { interface: uplink, master: up.master, bridgeName: name },
      });
    }
    if (!uplinkMade) await moveAddresses(uplink, name);
    await ip(['link', 'set', 'dev', uplink, 'master', name]);
  }
  if (spec.type !== 'no-vlan') await ip(['link', 'set', 'dev', uplink, 'mtu', String(spec.mtu)]);
  await ip(['link', 'set', 'dev', uplink, 'up']);
  await ip(['link', 'set', 'dev', name, 'up']);
  ctx.state.get().bridges[name] = { uplink, uplinkMade };
  await ctx.state.save();
  // TAPs this agent plugged into the bridge before it was (re)made
  for (const [tap, bridge] of Object.entries(ctx.state.get().taps)) {
    if (bridge !== name) continue;
    const t = await link(tap);
    if (t && t.master !== name) await ip(['link', 'set', 'dev', tap, 'master', name, 'up']);
  }
}

async function ensureVxlan(ctx: PartContext, spec: BridgeSpec): Promise<string> {
  const vni = spec.vni as number;
  if (!ctx.vtepIp) {
    throw new CloudError(
      'Unavailable',
      'HOST_VTEP_MISSING',
      'this agent has no VTEP address (vtepIp) for VXLAN bridges',
      {
        details: { bridgeName: spec.bridgeName, vni },
      },
    );
  }
  const name = ctx.names.vxlan(vni);
  const cur = await link(name);
  const data = cur?.linkinfo?.info_data ?? {};
  const matches =
    cur?.linkinfo?.info_kind === 'vxlan' &&
    data.id === vni &&
    data.local === ctx.vtepIp &&
    data.port === VXLAN_PORT &&
    data.learning === false;
  if (cur && !matches) await deleteLink(name);
  if (!cur || !matches) {
    await ip([
      'link',
      'add',
      name,
      'type',
      'vxlan',
      'id',
      String(vni),
      'dstport',
      String(VXLAN_PORT),
      'local',
      ctx.vtepIp,
      'nolearning',
    ]);
  }
  await syncFdb(name, spec.peers ?? []);
  return name;
}

interface FdbEntry {
  mac: string;
  dst?: string;
}

/** the all-zeros (flood) entries of a VXLAN device follow `peers` exactly */
async function syncFdb(dev: string, peers: string[]): Promise<void> {
  const out = await run('bridge', ['-j', 'fdb', 'show', 'dev', dev]);
  const entries = out.trim() === '' ? [] : (JSON.parse(out) as FdbEntry[]);
  const have = new Set(entries.filter((e) => e.mac === ZERO_MAC && e.dst).map((e) => e.dst as string));
  const want = new Set(peers);
  for (const dst of have) {
    if (!want.has(dst)) await run('bridge', ['fdb', 'del', ZERO_MAC, 'dev', dev, 'dst', dst]);
  }
  for (const dst of want) {
    if (!have.has(dst)) await run('bridge', ['fdb', 'append', ZERO_MAC, 'dev', dev, 'dst', dst]);
  }
}

async function ensureVlan(spec: BridgeSpec): Promise<string> {
  const parent = spec.physicalInterface as string;
  const name = `${parent}.${spec.vlan}`;
  if (name.length > 15) {
    throw new CloudError(
      'Invalid',
      'HOST_BRIDGE_SPEC_INVALID',
      `VLAN interface name ${name} is longer than 15`,
      {
        details: { physicalInterface: parent, vlan: spec.vlan },
      },
    );
  }
  if (await linkExists(name)) return name;
  if (!(await linkExists(parent))) {
    throw new CloudError('Unavailable', 'HOST_INTERFACE_MISSING', `the host has no interface ${parent}`, {
      details: { physicalInterface: parent, bridgeName: spec.bridgeName },
    });
  }
  const r = await runRaw('ip', [
    'link',
    'add',
    'link',
    parent,
    'name',
    name,
    'type',
    'vlan',
    'id',
    String(spec.vlan),
  ]);
  if (r.code !== 0) {
    if (/Unknown device type|not supported/i.test(r.stderr)) {
      throw new CloudError(
        'Unavailable',
        'HOST_VLAN_UNSUPPORTED',
        `this host's kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q / module 8021q): ${r.stderr.trim()}`,
        { details: { kernelFeature: 'CONFIG_VLAN_8021Q', bridgeName: spec.bridgeName, vlan: spec.vlan } },
      );
    }
    throw new CloudError(
      'Internal',
      'HOST_NETWORK_COMMAND_FAILED',
      `ip link add … type vlan: ${r.stderr.trim()}`,
    );
  }
  return name;
}

async function releaseUplink(ctx: PartContext, bridge: string, uplink: string, made: boolean): Promise<void> {
  if (made) {
    await deleteLink(uplink);
    return;
  }
  const l = await link(uplink);
  if (l?.master === bridge) {
    await ip(['link', 'set', 'dev', uplink, 'nomaster']);
    if (await linkExists(bridge)) await moveAddresses(bridge, uplink);
  }
  ctx.log.info({ bridge, uplink }, 'uplink released');
}

export async function removeBridge(ctx: PartContext, name: string): Promise<void> {
  const record = ctx.state.get().bridges[name];
  if (record?.uplink) await releaseUplink(ctx, name, record.uplink, record.uplinkMade);
  // a VXLAN device of ours still on it (a record lost mid-change)
  for (const l of await links()) {
    if (l.master === name && l.linkinfo?.info_kind === 'vxlan' && ctx.names.ownsLink(l.ifname))
      await deleteLink(l.ifname);
  }
  await deleteLink(name);
  delete ctx.state.get().bridges[name];
  await ctx.state.save();
  ctx.log.info({ bridge: name }, 'bridge removed');
}

interface AddrInfo {
  addr_info?: Array<{ family: string; local: string; prefixlen: number; scope: string }>;
}
interface RouteInfo {
  dst: string;
  gateway?: string;
  metric?: number;
  protocol?: string;
}

/** moves global addresses and the routes through them from one interface to another */
async function moveAddresses(from: string, to: string): Promise<void> {
  const addrs = (await ipJson<AddrInfo>(['addr', 'show', 'dev', from]))[0]?.addr_info ?? [];
  const global = addrs.filter((a) => a.scope === 'global');
  if (global.length === 0) return;
  const routes = await ipJson<RouteInfo>(['route', 'show', 'dev', from]);
  const viaRoutes = routes.filter((r) => r.gateway);
  for (const a of global) {
    await ip(['addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', from]);
    await runRaw('ip', ['addr', 'add', `${a.local}/${a.prefixlen}`, 'dev', to]);
  }
  await ip(['link', 'set', 'dev', to, 'up']);
  for (const r of viaRoutes) {
    const args = ['route', 'replace', r.dst, 'via', r.gateway as string, 'dev', to];
    if (r.metric !== undefined) args.push('metric', String(r.metric));
    await runRaw('ip', args);
  }
}
