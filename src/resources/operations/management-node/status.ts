/**
 * `GET /v1/cluster/status` (admin only; `nimbus cluster status`): one look at the cluster — its
 * nodes (as `management-nodes` shows them), the PostgreSQL they share (version, primary or
 * standby, replication lag, size) and the hosts each live node owns. Nodes stopped more than an
 * hour ago are left out: every restart leaves a stopped row behind.
 */
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { ownedBy } from '../../../cluster/ownership.js';
import { ClusterStatus } from '../../../contract/cluster.js';
import type { Db } from '../../../db/pool.js';
import { forbidden } from '../../../kernel/errors.js';

const seconds = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function clusterStatus(
  db: Db,
  deadAfterMs: number,
  present: (row: Record<string, unknown>) => Promise<Record<string, unknown>>,
) {
  const rows = await db
    .selectFrom('managementNodes')
    .selectAll()
    .where((eb) =>
      eb.or([eb('stoppedAt', 'is', null), eb('stoppedAt', '>', sql<Date>`now() - interval '1 hour'`)]),
    )
    .orderBy('startedAt')
    .execute();
  const nodes = await Promise.all(rows.map((r) => present(r as unknown as Record<string, unknown>)));
  const ownership = [];
  for (const n of nodes) {
    if (n.state !== 'Running' && n.state !== 'Draining') continue;
    const hosts = await db
      .selectFrom('hosts')
      .select('name')
      .where(ownedBy('hosts', n.uuid as string, deadAfterMs))
      .orderBy('name')
      .execute();
    ownership.push({ node: n.name, nodeUuid: n.uuid, hosts: hosts.map((h) => h.name) });
  }
  const facts = await sql<{ version: string; standby: boolean; size: string; lag: number | null }>`
    select current_setting('server_version') as version, pg_is_in_recovery() as standby,
      pg_database_size(current_database())::text as size,
      case when pg_is_in_recovery()
        then extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 end as lag`.execute(db);
  const f = facts.rows[0]!;
  const replicas = await sql<{ name: string; address: string | null; state: string; lag: number | null }>`
    select application_name as name, client_addr::text as address, state,
      extract(epoch from replay_lag)::float8 as lag
    from pg_stat_replication order by application_name`.execute(db);
  return {
    nodes,
    database: {
      serverVersion: f.version,
      role: f.standby ? 'standby' : 'primary',
      sizeBytes: Number(f.size),
      replayLagSeconds: seconds(f.lag),
      replicas: replicas.rows.map((r) => ({
        name: r.name,
        address: r.address,
        state: r.state,
        replayLagSeconds: seconds(r.lag),
      })),
    },
    ownership,
  };
}

export function registerClusterStatus(
  app: FastifyInstance,
  db: Db,
  deadAfterMs: number,
  present: (row: Record<string, unknown>) => Promise<Record<string, unknown>>,
): void {
  app.get(
    '/v1/cluster/status',
    {
      schema: {
        tags: ['management-nodes'],
        operationId: 'getClusterStatus',
        summary:
          'the management nodes, their database (role, lag, size) and the hosts each node owns (admin)',
        response: { 200: ClusterStatus },
      },
    },
    async (request) => {
      if (!request.caller?.isAdmin) throw forbidden('only the admin account may read the cluster status');
      return clusterStatus(db, deadAfterMs, present);
    },
  );
}
