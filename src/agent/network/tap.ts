/**
 * The TAP plugger the QEMU part uses: a VM NIC's TAP is named from the NIC's UUID (the name the
 * security groups match), made persistent (QEMU opens it with `ifname=…,script=no`), given the
 * NIC's MTU, put into the NIC's bridge and brought up. Idempotent both ways.
 */
import type { NicSpec } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { PartContext } from './context.js';
import { deleteLink, ip, link } from './exec.js';

export interface TapPlugger {
  /** makes (or repairs) the NIC's TAP in its bridge; returns the TAP's name */
  ensureTap(nic: NicSpec): Promise<string>;
  /** deletes the NIC's TAP (a missing one is fine) */
  removeTap(nicUuid: string): Promise<void>;
}

export function tapPlugger(ctx: PartContext): TapPlugger {
  return {
    async ensureTap(nic) {
      await ctx.ready();
      const name = ctx.names.tap(nic.uuid);
      const bridge = await link(nic.bridgeName);
      if (bridge?.linkinfo?.info_kind !== 'bridge') {
        throw new CloudError(
          'Unavailable',
          'HOST_BRIDGE_MISSING',
          `the host has no bridge ${nic.bridgeName} for NIC ${nic.uuid} (network.ensure-bridges first)`,
          { details: { bridgeName: nic.bridgeName, nicUuid: nic.uuid } },
        );
      }
      let cur = await link(name);
      if (cur !== undefined && cur.linkinfo?.info_kind !== 'tun') {
        await deleteLink(name);
        cur = undefined;
      }
      if (!cur) await ip(['tuntap', 'add', 'dev', name, 'mode', 'tap']);
      await ip(['link', 'set', 'dev', name, 'mtu', String(nic.mtu)]);
      if (cur?.master !== nic.bridgeName) await ip(['link', 'set', 'dev', name, 'master', nic.bridgeName]);
      await ip(['link', 'set', 'dev', name, 'up']);
      if (ctx.state.get().taps[name] !== nic.bridgeName) {
        ctx.state.get().taps[name] = nic.bridgeName;
        await ctx.state.save();
      }
      return name;
    },
    async removeTap(nicUuid) {
      await ctx.ready();
      const name = ctx.names.tap(nicUuid);
      await deleteLink(name);
      if (ctx.state.get().taps[name] !== undefined) {
        delete ctx.state.get().taps[name];
        await ctx.state.save();
      }
    },
  };
}
