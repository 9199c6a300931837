/**
 * A router interface shown as a Neutron port (device_owner `network:router_interface`): its
 * address is the subnet's gateway, which the L3's virtual router holds on the network; its MAC
 * and status are that router appliance's guest NIC's (none, DOWN, until the first VM on the
 * network made the router). Changed only through its router (add/remove_router_interface).
 */
import type { Caller } from '../../kernel/caller.js';
import { CloudError } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import { stamp } from './facade.js';
import { type RouterInterface, readInterfaces, readRouters } from './router-store.js';

type Iface = RouterInterface & { routerUuid: string; accountUuid: string };

export async function routerPortsOf(deps: OpenStackDeps, ifaces: Iface[]) {
  if (ifaces.length === 0) return [];
  const ranges = ifaces.map((i) => i.ipRangeUuid).filter((x): x is string => !!x);
  const gateways = ranges.length
    ? await deps.db.selectFrom('ipRanges').select(['uuid', 'gateway']).where('uuid', 'in', ranges).execute()
    : [];
  const l3s = ifaces.map((i) => i.l3NetworkUuid);
  const vrs = await deps.db
    .selectFrom('virtualRouters')
    .select(['l3NetworkUuid', 'vmUuid', 'state', 'createdAt', 'updatedAt'])
    .where('l3NetworkUuid', 'in', l3s)
    .execute();
  const appliances = vrs.map((v) => v.vmUuid).filter((x): x is string => !!x);
  const nics = appliances.length
    ? await deps.db
        .selectFrom('vmNics')
        .select(['vmUuid', 'l3NetworkUuid', 'mac'])
        .where('vmUuid', 'in', appliances)
        .execute()
    : [];
  return ifaces.map((i) => {
    const vr = vrs.find((v) => v.l3NetworkUuid === i.l3NetworkUuid);
    const nic = nics.find((n) => n.vmUuid === vr?.vmUuid && n.l3NetworkUuid === i.l3NetworkUuid);
    const gateway = gateways.find((g) => g.uuid === i.ipRangeUuid)?.gateway;
    return {
      id: i.uuid,
      name: '',
      description: '',
      network_id: i.l3NetworkUuid,
      tenant_id: i.accountUuid,
      project_id: i.accountUuid,
      mac_address: nic?.mac ?? null,
      fixed_ips: gateway ? [{ subnet_id: i.ipRangeUuid, ip_address: gateway }] : [],
      device_id: i.routerUuid,
      device_owner: 'network:router_interface',
      status: vr?.state === 'Running' ? 'ACTIVE' : 'DOWN',
      admin_state_up: true,
      security_groups: [],
      port_security_enabled: false,
      allowed_address_pairs: [],
      extra_dhcp_opts: [],
      'binding:host_id': '',
      'binding:vnic_type': 'normal',
      'binding:vif_type': vr?.state === 'Running' ? 'bridge' : 'unbound',
      tags: [],
      revision_number: 0,
      created_at: stamp(vr?.createdAt ?? null),
      updated_at: stamp(vr?.updatedAt ?? null),
    };
  });
}

/** the router interfaces a port list asks for, or undefined when it asks for servers' ports */
export async function routerPortsAskedFor(
  deps: OpenStackDeps,
  caller: Caller,
  deviceOwner: string | undefined,
  deviceId: string | undefined,
): Promise<Iface[] | undefined> {
  if (deviceOwner?.startsWith('network:router_interface'))
    return readInterfaces(deps.db, caller, deviceId !== undefined ? { routerUuid: deviceId } : {});
  if (deviceId !== undefined && (await readRouters(deps.db, caller, { uuid: deviceId, limit: 1 })).length > 0)
    return readInterfaces(deps.db, caller, { routerUuid: deviceId });
  return undefined;
}

export async function routerPort(deps: OpenStackDeps, caller: Caller, id: string) {
  const [iface] = await readInterfaces(deps.db, caller, { uuid: id });
  return iface && (await routerPortsOf(deps, [iface]))[0];
}

export function routerPortFixed(id: string): CloudError {
  return new CloudError(
    'Conflict',
    'PORT_IN_USE',
    `port ${id} is a router interface (device_owner network:router_interface): change it through its router's add/remove_router_interface`,
  );
}
