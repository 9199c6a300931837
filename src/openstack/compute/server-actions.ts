/**
 * `POST /v2.1/servers/{id}/action`: one key names the action. Each becomes the VM's own action
 * (its job runs as any other; the answer is 202 and the client polls the server), so the
 * transition table decides what is allowed in which state, and a refusal is Nova's 409.
 *
 *   os-start → start · os-stop → stop · reboot (SOFT and HARD alike) → reboot · pause → pause · unpause →
 *   resume · resize → change-offering (Stopped VMs; confirmResize is then a no-op) · rebuild →
 *   rebuild (same image) · os-migrateLive / migrate → migrate (admin) · createImage → an image of
 *   the root volume (a Running VM: through a snapshot of it, removed once the image is made) ·
 *   os-getVNCConsole / os-getSerialConsole → the VM console's WebSocket URL.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import { CONSOLE_WEBSOCKET_PATH } from '../../contract/console.js';
import type { JobRow } from '../../engine/jobs.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, invalidField } from '../../kernel/errors.js';
import { consoleTarget } from '../../resources/compute/console/target.js';
import { ConsoleTokens } from '../../resources/compute/console/tokens.js';
import type { OpenStackDeps } from '../deps.js';
import { baseUrl } from '../urls.js';
import { loadServer } from './servers.js';

type Obj = Record<string, unknown>;

const SYNC_STEP_MS = 120_000;

function refId(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw invalidField(field, 'required', 'FIELD_REQUIRED');
  return v.split('/').filter(Boolean).pop()!;
}

async function finished(deps: OpenStackDeps, job: JobRow, what: string): Promise<JobRow> {
  const done = await deps.engine.waitFor(job.uuid, SYNC_STEP_MS);
  if (done?.state !== 'Succeeded')
    throw new CloudError(
      'Conflict',
      'STEP_FAILED',
      `${what} did not succeed (job ${job.uuid}: ${done?.state ?? 'still running'})`,
    );
  return done;
}

/** createImage: the image's id once its job is admitted (the image itself becomes active later) */
async function createImage(deps: OpenStackDeps, caller: Caller, vm: Obj, body: Obj): Promise<string> {
  const name = typeof body.name === 'string' && body.name.length > 0 ? body.name : undefined;
  if (!name) throw invalidField('createImage.name', 'required', 'FIELD_REQUIRED');
  const volumes = deps.services.get('volumes')!;
  const snapshots = deps.services.get('volume-snapshots')!;
  const root = vm.rootVolumeUuid as string | null;
  if (!root) throw new CloudError('Conflict', 'VM_NO_ROOT_VOLUME', `server ${vm.uuid} has no root volume`);
  const imageBody = { name, description: `snapshot of server ${vm.name}` };
  let job: JobRow;
  if (vm.state === 'Stopped') job = await volumes.actions!['create-image']!(caller, root, imageBody);
  else {
    // a running disk is copied through a snapshot of it (the image is made from the snapshot)
    const snap = await finished(
      deps,
      await snapshots.create!(caller, { name: `image-${name}`.slice(0, 255), volumeUuid: root }),
      'the root volume’s snapshot',
    );
    const snapUuid = snap.resourceUuid!;
    job = await snapshots.actions!['create-image']!(caller, snapUuid, imageBody);
    void deps.engine
      .waitFor(job.uuid, 60 * 60_000)
      .then(() => snapshots.remove!(caller, snapUuid))
      .catch(() => undefined);
  }
  const imageUuid = (job.params as Obj | undefined)?.imageUuid;
  if (typeof imageUuid !== 'string')
    throw new CloudError('Internal', 'IMAGE_ID_MISSING', 'the image job named no image');
  const meta = (body.metadata ?? {}) as Obj;
  await deps.db
    .insertInto('openstackImages')
    .values({
      uuid: imageUuid,
      accountUuid: caller.accountUuid,
      name,
      diskFormat: 'qcow2',
      containerFormat: 'bare',
      properties: JSON.stringify({ ...meta, instance_uuid: vm.uuid, image_type: 'snapshot' }),
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
  return imageUuid;
}

async function consoleUrl(
  deps: OpenStackDeps,
  request: FastifyRequest,
  caller: Caller,
  vmUuid: string,
  type: string,
) {
  await consoleTarget(deps.db, vmUuid, caller);
  const { token } = await new ConsoleTokens(deps.db).issue(vmUuid, caller);
  const ws = baseUrl(request).replace(/^http/, 'ws');
  return { console: { type, url: `${ws}${CONSOLE_WEBSOCKET_PATH}?token=${encodeURIComponent(token)}` } };
}

export function registerServerActions(scope: FastifyInstance, deps: OpenStackDeps): void {
  const vms = deps.services.get('vms')!;
  const act = (caller: Caller, id: string, name: string, body: Obj = {}) =>
    vms.actions![name]!(caller, id, body);

  scope.post('/v2.1/servers/:id/action', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const body = (request.body ?? {}) as Obj;
    const keys = Object.keys(body);
    if (keys.length !== 1) throw invalidField('action', 'give exactly one action', 'ACTION_REQUIRED');
    const name = keys[0]!;
    const arg = (body[name] ?? {}) as Obj;
    const vm = await loadServer(deps, caller, id);
    switch (name) {
      case 'os-start':
        await act(caller, id, 'start');
        break;
      case 'os-stop':
        await act(caller, id, 'stop');
        break;
      case 'reboot':
        if (!['SOFT', 'HARD', undefined].includes(arg.type as string | undefined))
          throw invalidField('reboot.type', 'SOFT or HARD', 'INVALID_REBOOT_TYPE');
        await act(caller, id, 'reboot');
        break;
      case 'pause':
        await act(caller, id, 'pause');
        break;
      case 'unpause':
        await act(caller, id, 'resume');
        break;
      case 'resize':
        await act(caller, id, 'change-offering', {
          instanceOfferingUuid: refId(arg.flavorRef, 'resize.flavorRef'),
        });
        break;
      case 'confirmResize':
        break; // change-offering has no step to confirm
      case 'revertResize':
        throw new CloudError(
          'Conflict',
          'RESIZE_NOT_REVERTIBLE',
          'a resize here is final; resize back instead',
        );
      case 'rebuild':
        if (arg.imageRef !== undefined && refId(arg.imageRef, 'rebuild.imageRef') !== vm.imageUuid)
          throw invalidField(
            'rebuild.imageRef',
            'a rebuild keeps the server’s image',
            'REBUILD_IMAGE_UNSUPPORTED',
          );
        await act(caller, id, 'rebuild');
        break;
      case 'migrate':
        await act(caller, id, 'migrate');
        break;
      case 'os-migrateLive': {
        const host = typeof arg.host === 'string' && arg.host.length > 0 ? arg.host : undefined;
        const row = host
          ? await deps.db.selectFrom('hosts').select('uuid').where('name', '=', host).executeTakeFirst()
          : undefined;
        if (host && !row) throw invalidField('os-migrateLive.host', `no host ${host}`, 'HOST_NOT_FOUND');
        await act(caller, id, 'migrate', row ? { hostUuid: row.uuid } : {});
        break;
      }
      case 'createImage': {
        const imageUuid = await createImage(deps, caller, vm, arg);
        const href = `${baseUrl(request)}/image/v2/images/${imageUuid}`;
        return reply.code(202).header('location', href).send({ image_id: imageUuid });
      }
      case 'os-getVNCConsole':
        return consoleUrl(deps, request, caller, id, String(arg.type ?? 'novnc'));
      case 'os-getSerialConsole':
        return consoleUrl(deps, request, caller, id, String(arg.type ?? 'serial'));
      default:
        throw invalidField(
          'action',
          `${name} is not offered (docs/openstack.md lists the actions)`,
          'ACTION_UNSUPPORTED',
        );
    }
    return reply.code(202).send();
  });
}
