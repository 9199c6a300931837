/**
 * The virtual router Nimbus made for a network (by its first VM) outlives the VMs: its appliance
 * keeps the gateway address and a NIC on the L3, so the L3 and its ranges cannot be deleted while
 * it exists. Neutron has no such router — once the network's ports and router interfaces are
 * gone, its subnets and the network delete. So before deleting a subnet or a network, the façade
 * deletes the network's virtual router (the L3 owner may: docs/network.md), but only when nothing
 * else is on the network: no server NIC, no floating IP address, no Neutron router interface —
 * each a 409 naming it, checked before anything is removed.
 */
import type { Caller } from '../../kernel/caller.js';
import { conflict } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import { serviceOf, settle } from './facade.js';
import { routerOfNetwork } from './router-store.js';

/** a router appliance's destroy and expunge take a few host commands: more than one sync wait */
const ROUTER_DELETE_WAIT_MS = 120_000;

export async function assertNetworkUnused(deps: OpenStackDeps, l3Uuid: string, what: string): Promise<void> {
  const onRouter = await routerOfNetwork(deps.db, l3Uuid);
  if (onRouter)
    throw conflict('NETWORK_IN_USE', `${what} is on router ${onRouter}: remove the router interface first`);
  const appliance = await deps.db
    .selectFrom('virtualRouters')
    .select('vmUuid')
    .where('l3NetworkUuid', '=', l3Uuid)
    .executeTakeFirst();
  let nics = deps.db.selectFrom('vmNics').select('vmUuid').where('l3NetworkUuid', '=', l3Uuid);
  if (appliance?.vmUuid) nics = nics.where('vmUuid', '!=', appliance.vmUuid);
  const nic = await nics.executeTakeFirst();
  if (nic) throw conflict('NETWORK_IN_USE', `${what} has a port of server ${nic.vmUuid} on it`);
  const vip = await deps.db
    .selectFrom('vips')
    .select('ip')
    .where('l3NetworkUuid', '=', l3Uuid)
    .executeTakeFirst();
  if (vip) throw conflict('NETWORK_IN_USE', `${what} has floating IP address ${vip.ip} on it`);
}

/** deletes the network's virtual router, if Nimbus made one (call after assertNetworkUnused) */
export async function releaseNetworkRouter(
  deps: OpenStackDeps,
  caller: Caller,
  l3Uuid: string,
): Promise<void> {
  const router = await deps.db
    .selectFrom('virtualRouters')
    .select('uuid')
    .where('l3NetworkUuid', '=', l3Uuid)
    .executeTakeFirst();
  if (!router) return;
  await settle(
    deps,
    await serviceOf(deps, 'virtual-routers').remove!(caller, router.uuid),
    ROUTER_DELETE_WAIT_MS,
  );
}
