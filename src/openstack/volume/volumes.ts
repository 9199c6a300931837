/**
 * Cinder volumes = Nimbus data (and root) volumes. Asynchronous as Cinder's: a create answers
 * 202 with the volume `creating` and the client polls its status; actions (os-attach,
 * os-detach, os-extend) answer 202 and the status shows the job in flight (present.ts).
 * A delete is the volume's delete then its expunge (Cinder has no recoverable delete).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, invalid, invalidField, missingReference, notFound } from '../../kernel/errors.js';
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
import { GiB, gib, statusConditions, volumeContext, volumeOf } from './present.js';
import { setMetadata, TAG_KEY } from './tags.js';

const Nullable = <T extends import('typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);
const NullOnly = Type.Optional(Type.Null());
const VolumeCreate = Type.Object(
  {
    volume: Type.Object(
      {
        size: Type.Integer({ minimum: 1, maximum: 65536 }),
        name: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
        description: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
        volume_type: Type.Optional(Nullable(Type.String())),
        availability_zone: Type.Optional(Nullable(Type.Literal('nova'))),
        // kept as the volume's tags (tags.ts): a tag's key and value rules hold
        metadata: Type.Optional(
          Type.Record(Type.String({ pattern: TAG_KEY }), Type.String({ maxLength: 255 }), {
            additionalProperties: false,
          }),
        ),
        multiattach: Type.Optional(Type.Literal(false)),
        // Nimbus makes data volumes empty: none of these is served
        snapshot_id: NullOnly,
        source_volid: NullOnly,
        imageRef: NullOnly,
        backup_id: NullOnly,
        consistencygroup_id: NullOnly,
        group_id: NullOnly,
      },
      { additionalProperties: false },
    ),
    'OS-SCH-HNT:scheduler_hints': Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);
const VolumeUpdate = Type.Object(
  {
    volume: Type.Object(
      {
        name: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
        description: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
        metadata: Type.Optional(Type.Object({}, { additionalProperties: false })),
      },
      { additionalProperties: false, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);
const VolumeAction = Type.Object(
  {
    'os-attach': Type.Optional(
      Type.Object(
        {
          instance_uuid: Type.String(),
          mountpoint: Type.Optional(Type.String()),
          mode: Type.Optional(Type.Literal('rw')),
          host_name: Type.Optional(Nullable(Type.String())),
        },
        { additionalProperties: false },
      ),
    ),
    'os-detach': Type.Optional(
      Nullable(
        Type.Object(
          { attachment_id: Type.Optional(Nullable(Type.String())) },
          { additionalProperties: false },
        ),
      ),
    ),
    'os-extend': Type.Optional(
      Type.Object(
        { new_size: Type.Integer({ minimum: 1, maximum: 65536 }) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, minProperties: 1, maxProperties: 1 },
);

/**
 * Cinder answers a quota refusal with 413 overLimit (Nimbus's QUOTA_EXCEEDED is a Conflict on
 * the native API): `run` with that one translation.
 */
export async function overLimit<T>(reply: FastifyReply, run: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof CloudError) || err.code !== 'QUOTA_EXCEEDED') throw err;
    return reply.code(413).send({ overLimit: { code: 413, message: `${err.message} [${err.code}]` } });
  }
}

export interface ProjectParams {
  project_id: string;
}

/** the volume as the caller sees it; soft-deleted ones are gone for Cinder */
export async function seeVolume(
  deps: OpenStackDeps,
  caller: Caller,
  id: string,
): Promise<Record<string, unknown>> {
  const v = await visible(deps, 'volumes', id, caller);
  if (!v || v.state === 'Deleted') throw notFound('volume', id);
  return v;
}

/** a volume named in a body: another account's is "no volume" (400 naming the field) */
export async function volumeField(deps: OpenStackDeps, caller: Caller, field: string, id: string) {
  const v = await visible(deps, 'volumes', id, caller);
  if (!v || v.state === 'Deleted') throw missingReference(field, 'volume', id);
  return v;
}

async function typeToStorage(deps: OpenStackDeps, type: string): Promise<string> {
  const rows = await deps.db.selectFrom('primaryStorages').select(['uuid', 'name']).execute();
  const match = rows.filter((r) => r.uuid === type || r.name === type);
  if (match.length !== 1)
    throw invalidField(
      'volume_type',
      `no volume type ${type} (types are primary storages: ${rows.map((r) => r.name).join(', ') || 'none'})`,
      'VOLUME_TYPE_NOT_FOUND',
    );
  return match[0]!.uuid;
}

function listConditions(caller: Caller, projectId: string, query: Record<string, unknown>): string[] {
  refuseUnknown(query, ['name', 'status', 'bootable', 'all_tenants', 'project_id']);
  const q = ['state!=Deleted'];
  const all = caller.isAdmin && boolParam(query, 'all_tenants') === true;
  // Cinder scopes a list to the project, the admin's too, unless all_tenants (then project_id may)
  const project = param(query, 'project_id');
  if (!all) q.push(`accountUuid=${projectUuid(projectId)}`);
  else if (project !== undefined) q.push(idCondition('accountUuid', projectUuid(project)));
  const name = param(query, 'name');
  if (name !== undefined) q.push(`name=${name}`);
  const status = param(query, 'status');
  if (status !== undefined) q.push(...statusConditions(status));
  const bootable = boolParam(query, 'bootable');
  if (bootable !== undefined) q.push(bootable ? 'type=Root' : 'type=Data');
  return q;
}

export function registerVolumes(scope: FastifyInstance, deps: OpenStackDeps): void {
  const volumes = serviceOf(deps, 'volumes');
  const shape = async (request: FastifyRequest, rows: Record<string, unknown>[]) => {
    const { project_id } = request.params as ProjectParams;
    const ctx = await volumeContext(deps.db, rows);
    return rows.map((r) => volumeOf(request, project_id, r, ctx, callerOf(request).isAdmin));
  };
  const show = async (request: FastifyRequest, id: string) => ({
    volume: (await shape(request, [await seeVolume(deps, callerOf(request), id)]))[0],
  });

  const list = (detail: boolean) => async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const { project_id } = request.params as ProjectParams;
    const q = listConditions(caller, project_id, request.query as Record<string, unknown>);
    const page = await listPage(deps, request, 'volumes', caller, q);
    const shaped = await shape(request, page.rows);
    const next = page.links.filter((l) => l.rel === 'next');
    return {
      volumes: detail ? shaped : shaped.map((v) => ({ id: v.id, name: v.name, links: v.links })),
      ...(next.length ? { volumes_links: next } : {}),
    };
  };
  scope.get('/v3/:project_id/volumes', list(false));
  scope.get('/v3/:project_id/volumes/detail', list(true));
  scope.get('/v3/:project_id/volumes/:id', async (request) =>
    show(request, (request.params as { id: string }).id),
  );

  scope.post('/v3/:project_id/volumes', { schema: { body: VolumeCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const v = (request.body as Static<typeof VolumeCreate>).volume;
    const body: Record<string, unknown> = {
      // Nimbus names are required; Cinder's are not
      name: v.name ? v.name : `volume-${newId().slice(-12)}`,
      size: v.size * GiB,
      ...(v.description ? { description: v.description } : {}),
      ...(v.volume_type ? { primaryStorageUuid: await typeToStorage(deps, v.volume_type) } : {}),
    };
    return overLimit(reply, async () => {
      const job = await volumes.create!(caller, body);
      await setMetadata(deps, caller, job.resourceUuid as string, v.metadata ?? {});
      // the row exists from admission on: answer at once with it (creating), as Cinder does
      return reply.code(202).send(await show(request, job.resourceUuid as string));
    });
  });

  scope.put('/v3/:project_id/volumes/:id', { schema: { body: VolumeUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await seeVolume(deps, caller, id);
    const v = (request.body as Static<typeof VolumeUpdate>).volume;
    if (v.name === null || v.name === '') throw invalidField('volume.name', 'a Nimbus volume keeps a name');
    const change = {
      ...(v.name !== undefined ? { name: v.name } : {}),
      ...(v.description !== undefined ? { description: v.description ?? '' } : {}),
    };
    if (Object.keys(change).length > 0) await settle(deps, await volumes.update!(caller, id, change));
    return show(request, id);
  });

  scope.delete('/v3/:project_id/volumes/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const v = await seeVolume(deps, caller, id);
    // Cinder: "Volume status must be available or error…" (400), before anything changes
    if (v.vmUuid)
      throw invalidField(
        'volume',
        `volume ${id} is attached to server ${String(v.vmUuid)}: detach it first`,
        'VOLUME_IN_USE',
      );
    if (v.state !== 'Ready')
      throw invalidField(
        'volume',
        `volume ${id} is ${String(v.state)}; it must be available`,
        'VOLUME_INVALID_STATE',
      );
    const job = await volumes.remove!(caller, id);
    // then the expunge, once the delete is done (Cinder's delete is final); logged if it fails
    void settle(deps, job, 10 * 60_000)
      .then(async (done) => {
        if (done.state === 'Succeeded') await volumes.actions!.expunge!(caller, id, {});
      })
      .catch((err: unknown) =>
        request.log.warn({ err, volumeUuid: id }, 'Cinder delete: the expunge was not submitted'),
      );
    return reply.code(202).send();
  });

  scope.post(
    '/v3/:project_id/volumes/:id/action',
    { schema: { body: VolumeAction } },
    async (request, reply) => {
      const caller = callerOf(request);
      const { id } = request.params as { id: string };
      const v = await seeVolume(deps, caller, id);
      const b = request.body as Static<typeof VolumeAction>;
      if (b['os-attach']) {
        const server = b['os-attach'].instance_uuid;
        if (!(await visible(deps, 'vms', server, caller)))
          throw missingReference('os-attach.instance_uuid', 'server', server);
        if (v.vmUuid)
          throw invalidField(
            'volume',
            `volume ${id} is already attached to server ${String(v.vmUuid)}`,
            'VOLUME_IN_USE',
          );
        await volumes.actions!.attach!(caller, id, { vmUuid: server });
      } else if (b['os-detach'] !== undefined) {
        const attachment = b['os-detach']?.attachment_id;
        if (attachment && attachment !== id)
          throw invalidField('os-detach.attachment_id', `volume ${id} has one attachment, ${id}`);
        if (!v.vmUuid) throw invalidField('volume', `volume ${id} is not attached`, 'VOLUME_NOT_ATTACHED');
        await volumes.actions!.detach!(caller, id, {});
      } else if (b['os-extend']) {
        const size = b['os-extend'].new_size;
        if (size <= gib(v.size))
          throw invalid([
            { field: 'os-extend.new_size', problem: `must be more than the volume's ${gib(v.size)} GiB` },
          ]);
        const refused = await overLimit(reply, () =>
          volumes.actions!.resize!(caller, id, { size: size * GiB }),
        );
        if ((refused as unknown) === reply) return reply;
      } else {
        throw new CloudError('Invalid', 'ACTION_NOT_SUPPORTED', 'actions: os-attach, os-detach, os-extend');
      }
      return reply.code(202).send();
    },
  );
}
