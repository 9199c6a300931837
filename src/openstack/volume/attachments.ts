/**
 * Cinder attachments (microversion 3.27+). A Nimbus volume is on one VM at a time, so a volume
 * has at most one attachment and the attachment's id is the volume's id. Creating one with an
 * instance attaches the volume (the volume's attach job; status `attaching`, then `attached`);
 * deleting it detaches. `os-complete` and a connector update change nothing: Nimbus attaches
 * the disk to the VM itself, there is no connection for a client to finish.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, invalidField, missingReference } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import { idCondition, listPage, param, refuseUnknown, serviceOf, stamp, visible } from '../network/facade.js';
import { projectUuid } from '../network/project.js';
import { busyOf } from './present.js';
import { type ProjectParams, volumeField } from './volumes.js';

const AttachmentCreate = Type.Object(
  {
    attachment: Type.Object(
      {
        volume_uuid: Type.String(),
        instance_uuid: Type.String(),
        connector: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])),
        mode: Type.Optional(Type.Literal('rw')),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const AttachmentUpdate = Type.Object(
  {
    attachment: Type.Object(
      { connector: Type.Object({}, { additionalProperties: true }) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const ATTACHMENTS_MICROVERSION = 27;

function attachmentOf(v: Record<string, unknown>, busy: string | undefined) {
  const status = busy === 'attaching' ? 'attaching' : busy === 'detaching' ? 'detaching' : 'attached';
  return {
    id: v.uuid,
    volume_id: v.uuid,
    instance: v.vmUuid,
    status,
    attach_mode: 'rw',
    attached_at: stamp(v.updatedAt),
    detached_at: null,
    connection_info: { driver_volume_type: 'nimbus', data: { device: v.deviceName ?? null } },
  };
}

/** the attachment (= its volume) the caller sees, attached or on its way */
async function seeAttachment(deps: OpenStackDeps, caller: Caller, id: string) {
  const v = await visible(deps, 'volumes', id, caller);
  const busy = v ? (await busyOf(deps.db, [id])).get(id) : undefined;
  if (!v || (!v.vmUuid && busy !== 'attaching'))
    throw new CloudError('NotFound', 'ATTACHMENT_NOT_FOUND', `attachment ${id} not found`);
  return { v, busy };
}

export function registerAttachments(scope: FastifyInstance, deps: OpenStackDeps): void {
  const volumes = serviceOf(deps, 'volumes');
  const list = (detail: boolean) => async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const { project_id } = request.params as ProjectParams;
    const query = request.query as Record<string, unknown>;
    refuseUnknown(query, ['volume_id', 'instance_id']);
    const q = ['state=Ready', 'vmUuid!=null', `accountUuid=${projectUuid(project_id)}`];
    const volume = param(query, 'volume_id');
    if (volume !== undefined) q.push(idCondition('uuid', volume));
    const instance = param(query, 'instance_id');
    if (instance !== undefined) q.push(idCondition('vmUuid', instance));
    const page = await listPage(deps, request, 'volumes', caller, q);
    const busy = await busyOf(
      deps.db,
      page.rows.map((r) => r.uuid as string),
    );
    const shaped = page.rows.map((r) => attachmentOf(r, busy.get(r.uuid as string)));
    return {
      attachments: detail
        ? shaped
        : shaped.map((a) => ({ id: a.id, volume_id: a.volume_id, instance: a.instance, status: a.status })),
    };
  };
  scope.get('/v3/:project_id/attachments', list(false));
  scope.get('/v3/:project_id/attachments/detail', list(true));
  scope.get('/v3/:project_id/attachments/:id', async (request) => {
    const { v, busy } = await seeAttachment(deps, callerOf(request), (request.params as { id: string }).id);
    return { attachment: attachmentOf(v, busy) };
  });

  scope.post('/v3/:project_id/attachments', { schema: { body: AttachmentCreate } }, async (request) => {
    const caller = callerOf(request);
    const a = (request.body as Static<typeof AttachmentCreate>).attachment;
    const v = await volumeField(deps, caller, 'attachment.volume_uuid', a.volume_uuid);
    if (!(await visible(deps, 'vms', a.instance_uuid, caller)))
      throw missingReference('attachment.instance_uuid', 'server', a.instance_uuid);
    if (v.vmUuid)
      throw invalidField(
        'attachment.volume_uuid',
        `volume ${a.volume_uuid} is attached to server ${String(v.vmUuid)}`,
        'VOLUME_IN_USE',
      );
    await volumes.actions!.attach!(caller, a.volume_uuid, { vmUuid: a.instance_uuid });
    return {
      attachment: { ...attachmentOf({ ...v, vmUuid: a.instance_uuid }, 'attaching'), status: 'attaching' },
    };
  });

  scope.put('/v3/:project_id/attachments/:id', { schema: { body: AttachmentUpdate } }, async (request) => {
    const { v, busy } = await seeAttachment(deps, callerOf(request), (request.params as { id: string }).id);
    return { attachment: attachmentOf(v, busy) };
  });

  scope.post('/v3/:project_id/attachments/:id/action', async (request, reply) => {
    const body = request.body as Record<string, unknown> | undefined;
    if (!body || !('os-complete' in body))
      throw invalidField('body', 'the one attachment action is os-complete');
    await seeAttachment(deps, callerOf(request), (request.params as { id: string }).id);
    return reply.code(204).send();
  });

  scope.delete('/v3/:project_id/attachments/:id', async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const { v } = await seeAttachment(deps, caller, id);
    if (!v.vmUuid) throw new CloudError('Conflict', 'VOLUME_BUSY', `volume ${id} is still attaching`);
    await volumes.actions!.detach!(caller, id, {});
    return { attachments: [] };
  });
}
