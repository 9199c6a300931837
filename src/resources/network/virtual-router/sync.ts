/**
 * Sends routers their whole configuration (`router.apply-config`), versioned like host state
 * (docs/network.md "Host network sync"): each run takes `nextval('network_config_version')`
 * BEFORE it reads the configuration, and a router applies only newer versions — so whatever
 * node syncs, the router ends with the newest state even when re-syncs cross. Every change to
 * what a router serves (EIPs, port forwarding, NICs on its L3) is followed by a sync.
 *
 * Per router, one sync at a time in this node; requests during a run are coalesced into the
 * next run. Routers not Running (being made, in Error) are skipped: a router gets its whole
 * configuration when it becomes Running.
 */
import { sql } from 'kysely';
import type { Db } from '../../../db/pool.js';
import { addressOf } from '../../compute/vm/placement.js';
import type { FlowDeps } from '../../service.js';
import { buildRouterConfig } from './config.js';
import { SingleFlight } from './single-flight.js';

/** per node (each node has its own deps): coalescing is within one node */
const flights = new WeakMap<FlowDeps, SingleFlight>();

function flightOf(deps: FlowDeps): SingleFlight {
  let f = flights.get(deps);
  if (!f) {
    f = new SingleFlight();
    flights.set(deps, f);
  }
  return f;
}

async function syncOne(db: Db, deps: FlowDeps, routerUuid: string): Promise<void> {
  const { version } = await sql<{ version: string }>`select nextval('network_config_version') as version`
    .execute(db)
    .then((r) => r.rows[0]!);
  const router = await db
    .selectFrom('virtualRouters as r')
    .leftJoin('vms as v', 'v.uuid', 'r.vmUuid')
    .select([
      'r.uuid',
      'r.l3NetworkUuid',
      'r.offeringUuid',
      'r.vmUuid',
      'r.publicIp',
      'r.guestIp',
      'r.state',
      'v.hostUuid',
    ])
    .where('r.uuid', '=', routerUuid)
    .executeTakeFirst();
  if (router?.state !== 'Running' || !router.hostUuid) return;
  const config = await buildRouterConfig(db, router);
  const host = await addressOf(db, router.hostUuid);
  try {
    await deps.drivers.send(host, 'router.apply-config', { version: Number(version), config });
  } catch (err) {
    await db
      .updateTable('virtualRouters')
      .set({ status: 'Disconnected', updatedAt: new Date() })
      .where('uuid', '=', routerUuid)
      .where('state', '=', 'Running')
      .execute();
    throw err;
  }
  await db
    .updateTable('virtualRouters')
    .set({
      configVersion: sql`greatest(config_version, ${version}::bigint)`,
      status: 'Connected',
      updatedAt: new Date(),
    })
    .where('uuid', '=', routerUuid)
    .execute();
}

/** Re-sends each router its whole configuration; fails with the first failure after trying all. */
export async function syncRouters(db: Db, deps: FlowDeps, routerUuids: string[]): Promise<void> {
  const flight = flightOf(deps);
  const results = await Promise.allSettled(
    [...new Set(routerUuids)].map((uuid) => flight.run(uuid, () => syncOne(db, deps, uuid))),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The routers serving these L3 networks (at most one each). */
export async function routersOf(db: Db, l3NetworkUuids: Array<string | null | undefined>): Promise<string[]> {
  const l3s = [...new Set(l3NetworkUuids.filter((u): u is string => !!u))];
  if (l3s.length === 0) return [];
  const rows = await db
    .selectFrom('virtualRouters')
    .select('uuid')
    .where('l3NetworkUuid', 'in', l3s)
    .execute();
  return rows.map((r) => r.uuid);
}

/** Re-syncs the routers of these L3 networks (what a NIC, EIP or port-forwarding change calls). */
export async function syncRoutersOfL3s(
  db: Db,
  deps: FlowDeps,
  l3NetworkUuids: Array<string | null | undefined>,
): Promise<void> {
  await syncRouters(db, deps, await routersOf(db, l3NetworkUuids));
}

/** The L3 networks of these NICs (for the routers an EIP or rule change touches). */
export async function l3sOfNics(db: Db, nicUuids: Array<string | null | undefined>): Promise<string[]> {
  const nics = [...new Set(nicUuids.filter((u): u is string => !!u))];
  if (nics.length === 0) return [];
  const rows = await db.selectFrom('vmNics').select('l3NetworkUuid').where('uuid', 'in', nics).execute();
  return [...new Set(rows.map((r) => r.l3NetworkUuid))];
}
