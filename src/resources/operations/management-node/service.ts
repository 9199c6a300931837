/**
 * `management-nodes` (admin only, read-only): each node's row from the membership table with
 * what it is doing — its state (from its stop, drain, fence and heartbeat columns), the hosts it
 * owns by rendezvous hashing (the ones its reconciler pings) and its Running jobs.
 */
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { ownedBy } from '../../../cluster/ownership.js';
import { managementNodes as contract } from '../../../contract/cluster.js';
import type { Db } from '../../../db/pool.js';
import { getVisibleRow } from '../../../engine/query/index.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { notFound } from '../../../kernel/errors.js';
import type { KindService } from '../../service.js';
import { registerClusterStatus } from './status.js';

export const managementNodeSchema: KindSchema = {
  kind: 'management-nodes',
  table: 'managementNodes',
  visibility: 'admin',
  fields: {
    uuid: 'uuid',
    name: 'string',
    address: 'string',
    version: 'string',
    startedAt: 'timestamp',
    heartbeatAt: 'timestamp',
    stoppedAt: 'timestamp',
    drainingAt: 'timestamp',
    fencedBy: 'uuid',
  },
  defaultSort: 'startedAt',
};

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

export class ManagementNodeService implements KindService {
  readonly contract = contract;
  readonly schema = managementNodeSchema;

  constructor(
    private readonly db: Db,
    private readonly deadAfterMs: number,
  ) {}

  /** `GET /v1/cluster/status` (status.ts) */
  routes(app: FastifyInstance): void {
    registerClusterStatus(app, this.db, this.deadAfterMs, this.present);
  }

  get = async (caller: Caller, uuid: string) => {
    const row = await getVisibleRow(this.db, this.schema, uuid, caller);
    if (!row) throw notFound('management node', uuid);
    return this.present(row);
  };

  present = async (row: Record<string, unknown>) => {
    const uuid = row.uuid as string;
    const facts = await this.db
      .selectNoFrom((eb) => [
        eb
          .selectFrom('hosts')
          .select((e) => e.fn.countAll<number>().as('n'))
          .where(ownedBy('hosts', uuid, this.deadAfterMs))
          .as('ownedHosts'),
        eb
          .selectFrom('jobs')
          .select((e) => e.fn.countAll<number>().as('n'))
          .where('ownerNode', '=', uuid)
          .where('state', '=', 'Running')
          .as('runningJobs'),
        sql<boolean>`${row.heartbeatAt as Date}::timestamptz < now() - ${this.deadAfterMs} * interval '1 millisecond'`.as(
          'silent',
        ),
      ])
      .executeTakeFirstOrThrow();
    const state = row.stoppedAt
      ? row.fencedBy && row.fencedBy !== uuid
        ? 'Fenced'
        : 'Stopped'
      : row.drainingAt
        ? 'Draining'
        : facts.silent
          ? 'Unreachable'
          : 'Running';
    return {
      uuid,
      name: row.name,
      address: row.address,
      version: row.version ?? '',
      state,
      startedAt: iso(row.startedAt),
      heartbeatAt: iso(row.heartbeatAt),
      stoppedAt: iso(row.stoppedAt),
      fencedBy: row.fencedBy ?? null,
      ownedHosts: Number(facts.ownedHosts ?? 0),
      runningJobs: Number(facts.runningJobs ?? 0),
    };
  };
}
