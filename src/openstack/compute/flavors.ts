/**
 * Nova flavors over instance offerings: ram in MiB, vcpus, no disk of their own (the root disk
 * is the image's size, or the boot volume's), public to every project. Admins create and delete
 * them (the offering's job is waited for, as Nova answers a flavor create with the flavor).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import { getVisibleRow } from '../../engine/query/index.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, forbidden, invalidField } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import { listPage } from '../listing.js';
import { link } from './server-view.js';

type Obj = Record<string, unknown>;
const MiB = 1024 ** 2;

export const flavorNotFound = (id: string) =>
  new CloudError('NotFound', 'INSTANCE_OFFERING_NOT_FOUND', `Flavor ${id} could not be found.`);

function flavorView(request: FastifyRequest, o: Obj, detail: boolean): Obj {
  const base = { id: o.uuid, name: o.name, links: link(request, `flavors/${o.uuid}`) };
  if (!detail) return base;
  return {
    ...base,
    ram: Math.floor(Number(o.memory) / MiB),
    vcpus: o.cpu,
    disk: 0,
    'OS-FLV-EXT-DATA:ephemeral': 0,
    swap: '',
    rxtx_factor: 1.0,
    'os-flavor-access:is_public': true,
    'OS-FLV-DISABLED:disabled': o.state === 'Disabled',
  };
}

/** instance offerings are the admin's to change (kind-routes.ts adminGuard, the same rule) */
function adminOnly(caller: Caller, what: string): void {
  if (!caller.isAdmin)
    throw forbidden(`Policy doesn't allow os_compute_api:os-flavor-manage:${what} to be performed.`);
}

export function registerFlavors(scope: FastifyInstance, deps: OpenStackDeps): void {
  const offerings = deps.services.get('instance-offerings')!;
  const list = async (request: FastifyRequest, detail: boolean) => {
    const qs = request.query as Obj;
    const q: string[] = [];
    if (qs.minRam !== undefined) q.push(`memory>=${Number(qs.minRam) * MiB}`);
    const page = await listPage(deps, request, 'instance-offerings', {
      q,
      limit: qs.limit,
      marker: qs.marker,
      sort: 'createdAt',
    });
    return { flavors: page.items.map((o) => flavorView(request, o, detail)) };
  };
  scope.get('/v2.1/flavors', (request) => list(request, false));
  scope.get('/v2.1/flavors/detail', (request) => list(request, true));
  const load = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    const row = await getVisibleRow(deps.db, offerings.schema, id, callerOf(request));
    if (!row) throw flavorNotFound(id);
    return row;
  };
  scope.get('/v2.1/flavors/:id', async (request) => ({
    flavor: flavorView(request, await load(request), true),
  }));
  scope.get('/v2.1/flavors/:id/os-extra_specs', async (request) => {
    await load(request);
    return { extra_specs: {} };
  });
  scope.get('/v2.1/flavors/:id/os-flavor-access', async (request) => {
    await load(request);
    throw new CloudError('NotFound', 'FLAVOR_PUBLIC', 'Access list not available for public flavors.');
  });

  scope.post('/v2.1/flavors', async (request) => {
    const caller = callerOf(request);
    adminOnly(caller, 'create');
    const f = (request.body as Obj | undefined)?.flavor as Obj | undefined;
    if (!f) throw invalidField('flavor', 'required', 'FIELD_REQUIRED');
    if (
      Number(f.disk ?? 0) !== 0 ||
      Number(f['OS-FLV-EXT-DATA:ephemeral'] ?? 0) !== 0 ||
      Number(f.swap || 0) !== 0
    )
      throw invalidField(
        'flavor.disk',
        'flavors carry no disk here (0): the root disk is the image’s',
        'FLAVOR_DISK_UNSUPPORTED',
      );
    const job = await offerings.create!(caller, {
      name: f.name,
      cpu: Number(f.vcpus),
      memory: Number(f.ram) * MiB,
    });
    const done = await deps.engine.waitFor(job.uuid, 30_000);
    if (done?.state !== 'Succeeded')
      throw new CloudError(
        'Conflict',
        'FLAVOR_CREATE_FAILED',
        `the flavor was not made (job ${job.uuid}: ${done?.state})`,
      );
    const row = await getVisibleRow(deps.db, offerings.schema, job.resourceUuid!, caller);
    return { flavor: flavorView(request, row!, true) };
  });
  scope.delete('/v2.1/flavors/:id', async (request, reply) => {
    adminOnly(callerOf(request), 'delete');
    const row = await load(request);
    const job = await offerings.remove!(callerOf(request), row.uuid as string);
    await deps.engine.waitFor(job.uuid, 30_000);
    return reply.code(202).send();
  });
}
