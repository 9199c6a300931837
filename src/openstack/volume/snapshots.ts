/**
 * Cinder snapshots = Nimbus volume snapshots (each volume's snapshots form a tree in Nimbus;
 * Cinder sees them flat). Asynchronous: a create answers 202 with the snapshot `creating`.
 * `force` is accepted: Nimbus snapshots attached volumes too.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { invalidField, notFound } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { OpenStackDeps } from '../deps.js';
import {
  boolParam,
  idCondition,
  listPage,
  param,
  refuseUnknown,
  serviceOf,
  settle,
  visible,
} from '../network/facade.js';
import { projectUuid } from '../network/project.js';
import { busyOf, snapshotOf } from './present.js';
import { overLimit, type ProjectParams, volumeField } from './volumes.js';

const Nullable = <T extends import('typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);
const SnapshotCreate = Type.Object(
  {
    snapshot: Type.Object(
      {
        volume_id: Type.String(),
        name: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
        description: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
        force: Type.Optional(Type.Boolean()),
        metadata: Type.Optional(Type.Object({}, { additionalProperties: false })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const SnapshotUpdate = Type.Object(
  {
    snapshot: Type.Object(
      {
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        description: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
      },
      { additionalProperties: false, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);

async function snapshotsOf(deps: OpenStackDeps, rows: Record<string, unknown>[]) {
  if (rows.length === 0) return [];
  const sizes = await deps.db
    .selectFrom('volumes')
    .select(['uuid', 'size'])
    .where(
      'uuid',
      'in',
      rows.map((r) => r.volumeUuid as string),
    )
    .execute();
  const busy = await busyOf(
    deps.db,
    rows.map((r) => r.uuid as string),
  );
  return rows.map((r) =>
    snapshotOf(r, sizes.find((s) => s.uuid === r.volumeUuid)?.size, busy.get(r.uuid as string)),
  );
}

async function seeSnapshot(deps: OpenStackDeps, caller: Caller, id: string) {
  const s = await visible(deps, 'volume-snapshots', id, caller);
  if (!s) throw notFound('snapshot', id);
  return s;
}

export function registerSnapshots(scope: FastifyInstance, deps: OpenStackDeps): void {
  const snapshots = serviceOf(deps, 'volume-snapshots');
  const show = async (caller: Caller, id: string) => ({
    snapshot: (await snapshotsOf(deps, [await seeSnapshot(deps, caller, id)]))[0],
  });
  const list = (detail: boolean) => async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const { project_id } = request.params as ProjectParams;
    const query = request.query as Record<string, unknown>;
    refuseUnknown(query, ['name', 'volume_id', 'status', 'all_tenants']);
    const q: string[] = [];
    if (!(caller.isAdmin && boolParam(query, 'all_tenants') === true))
      q.push(`accountUuid=${projectUuid(project_id)}`);
    const name = param(query, 'name');
    if (name !== undefined) q.push(`name=${name}`);
    const volume = param(query, 'volume_id');
    if (volume !== undefined) q.push(idCondition('volumeUuid', volume));
    const status = param(query, 'status');
    if (status !== undefined)
      q.push(status === 'creating' ? 'state=Creating' : status === 'available' ? 'state=Ready' : 'uuid=null');
    const page = await listPage(deps, request, 'volume-snapshots', caller, q);
    const shaped = await snapshotsOf(deps, page.rows);
    const next = page.links.filter((l) => l.rel === 'next');
    return {
      snapshots: detail
        ? shaped
        : shaped.map((s) => ({
            id: s.id,
            name: s.name,
            volume_id: s.volume_id,
            status: s.status,
            size: s.size,
          })),
      ...(next.length ? { snapshots_links: next } : {}),
    };
  };
  scope.get('/v3/:project_id/snapshots', list(false));
  scope.get('/v3/:project_id/snapshots/detail', list(true));
  scope.get('/v3/:project_id/snapshots/:id', async (request) =>
    show(callerOf(request), (request.params as { id: string }).id),
  );

  scope.post('/v3/:project_id/snapshots', { schema: { body: SnapshotCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const s = (request.body as Static<typeof SnapshotCreate>).snapshot;
    await volumeField(deps, caller, 'snapshot.volume_id', s.volume_id);
    return overLimit(reply, async () => {
      const job = await snapshots.create!(caller, {
        name: s.name ? s.name : `snapshot-${newId().slice(-12)}`,
        volumeUuid: s.volume_id,
        ...(s.description ? { description: s.description } : {}),
      });
      return reply.code(202).send(await show(caller, job.resourceUuid as string));
    });
  });

  scope.put('/v3/:project_id/snapshots/:id', { schema: { body: SnapshotUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await seeSnapshot(deps, caller, id);
    const s = (request.body as Static<typeof SnapshotUpdate>).snapshot;
    const change = {
      ...(s.name !== undefined ? { name: s.name } : {}),
      ...(s.description !== undefined ? { description: s.description ?? '' } : {}),
    };
    await settle(deps, await snapshots.update!(caller, id, change));
    return show(caller, id);
  });

  scope.delete('/v3/:project_id/snapshots/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const s = await seeSnapshot(deps, caller, id);
    if (s.state !== 'Ready')
      throw invalidField('snapshot', `snapshot ${id} is still being made`, 'SNAPSHOT_INVALID_STATE');
    await snapshots.remove!(caller, id);
    return reply.code(202).send();
  });
}
