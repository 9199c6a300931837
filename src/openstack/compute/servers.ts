/**
 * Nova servers over Nimbus VMs: create (202, the client polls the server's status), list (with
 * `detail`), show, update (name), delete. Create maps imageRef → imageUuid, flavorRef →
 * instanceOfferingUuid, networks → L3 networks (a Neutron network is an L3 here), security
 * groups by name or id, availability_zone → zone, the `group` scheduler hint → affinity group,
 * block_device_mapping_v2 → root disk size and data disks; key name, metadata and user-data are
 * recorded in the VM's own admitting transaction (VmService.createWith).
 *
 * Delete is Nova's: the server is gone (404) once the destroy has run; the façade then expunges
 * the destroyed VM so its disk and addresses are freed as Nova frees them (if this node stops in
 * between, the reaper expunges it after the retention period).
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import { VM_USER_DATA_MAX_BYTES } from '../../contract/compute.js';
import { getVisibleRow } from '../../engine/query/index.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, invalidField } from '../../kernel/errors.js';
import { isUuid } from '../../kernel/ids.js';
import { userDataProblem } from '../../resources/compute/vm/guest-config.js';
import type { VmService } from '../../resources/compute/vm/service.js';
import type { OpenStackDeps } from '../deps.js';
import { listPage } from '../listing.js';
import { cloudConfigWithKey, keypairOf } from './keypairs.js';
import { GONE_STATES, statesOfStatus } from './server-state.js';
import { link, serverViews } from './server-view.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;

export const serverNotFound = (id: string) =>
  new CloudError('NotFound', 'VM_NOT_FOUND', `Instance ${id} could not be found.`);

/** the VM behind a server id, visible to the caller and not deleted */
export async function loadServer(deps: OpenStackDeps, caller: Caller, id: string): Promise<Obj> {
  const svc = deps.services.get('vms')!;
  const row = isUuid(id) ? await getVisibleRow(deps.db, svc.schema, id, caller) : undefined;
  if (!row || GONE_STATES.includes(row.state as string)) throw serverNotFound(id);
  return row;
}

/** a reference given as an id or as a link to it (`flavorRef` may be a URL) */
function refId(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw invalidField(field, 'required', 'FIELD_REQUIRED');
  const id = v.split('/').filter(Boolean).pop()!;
  if (!isUuid(id)) throw invalidField(field, `${v} is not an id of this cloud`, 'INVALID_REFERENCE');
  return id;
}

async function nameOrIdTo(
  deps: OpenStackDeps,
  caller: Caller,
  table: 'securityGroups' | 'zones',
  value: string,
  field: string,
): Promise<string> {
  let q = deps.db.selectFrom(table).select(['uuid', 'accountUuid']);
  q = isUuid(value) ? q.where('uuid', '=', value) : q.where('name', '=', value);
  const rows = (await q.execute()).filter(
    (r) => table === 'zones' || caller.isAdmin || r.accountUuid === caller.accountUuid,
  );
  if (rows.length === 1) return rows[0]!.uuid;
  throw invalidField(
    field,
    rows.length === 0 ? `no ${value} found` : `${value} names several; give the id`,
    'INVALID_REFERENCE',
  );
}

const GiB = 1024 ** 3;

/** the native create body (and what the façade records with it) from Nova's `server` */
async function createBody(deps: OpenStackDeps, caller: Caller, body: Obj) {
  const s = obj(body.server);
  if (!s) throw invalidField('server', 'required', 'FIELD_REQUIRED');
  if (typeof s.name !== 'string' || s.name.length === 0)
    throw invalidField('server.name', 'required', 'FIELD_REQUIRED');
  const out: Obj = { name: s.name, instanceOfferingUuid: refId(s.flavorRef, 'server.flavorRef') };
  const bdm = Array.isArray(s.block_device_mapping_v2) ? (s.block_device_mapping_v2 as Obj[]) : [];
  const boot = bdm.find((b) => String(b.boot_index ?? '') === '0');
  if (boot && boot.source_type === 'image') {
    out.imageUuid = refId(boot.uuid, 'server.block_device_mapping_v2[0].uuid');
    if (boot.volume_size !== undefined) out.rootDiskSize = Number(boot.volume_size) * GiB;
  } else if (boot) {
    throw invalidField(
      'server.block_device_mapping_v2',
      'only booting from an image is offered (source_type image)',
      'BDM_UNSUPPORTED',
    );
  } else out.imageUuid = refId(s.imageRef, 'server.imageRef');
  const blanks = bdm.filter(
    (b) => b !== boot && b.source_type === 'blank' && b.destination_type === 'volume',
  );
  if (blanks.length > 0) {
    out.dataDiskSizes = blanks.map((b) => Number(b.volume_size) * GiB);
    out.deleteDataDisksWithVm = blanks.every((b) => b.delete_on_termination === true);
  }
  if (bdm.some((b) => b !== boot && !blanks.includes(b)))
    throw invalidField(
      'server.block_device_mapping_v2',
      'extra devices must be blank volumes',
      'BDM_UNSUPPORTED',
    );
  const nets = s.networks;
  if (Array.isArray(nets)) {
    const l3: string[] = [];
    const ips: Obj[] = [];
    for (const [i, n] of (nets as Obj[]).entries()) {
      if (n.port)
        throw invalidField(
          `server.networks[${i}].port`,
          'give the network (uuid); ports are made with the server',
          'PORT_UNSUPPORTED',
        );
      const id = refId(n.uuid, `server.networks[${i}].uuid`);
      l3.push(id);
      if (typeof n.fixed_ip === 'string') ips.push({ l3NetworkUuid: id, ip: n.fixed_ip });
    }
    if (l3.length > 0) out.l3NetworkUuids = l3;
    if (ips.length > 0) out.staticIps = ips;
  } else if (nets === undefined || nets === 'auto') {
    // as Nova before 2.37: with no networks given, the one network the project can use
    const mine = await deps.db
      .selectFrom('l3Networks')
      .select('uuid')
      .where((eb) => eb.or([eb('accountUuid', '=', caller.accountUuid), eb('shared', '=', true)]))
      .where('category', '!=', 'system')
      .limit(2)
      .execute();
    if (mine.length === 1) out.l3NetworkUuids = [mine[0]!.uuid];
    if (mine.length > 1)
      throw new CloudError(
        'Conflict',
        'NETWORK_AMBIGUOUS',
        'Multiple possible networks found, use a Network ID to be more specific.',
      );
  } else if (nets !== 'none')
    throw invalidField('server.networks', 'a list, "auto" or "none"', 'INVALID_NETWORKS');
  const securityGroups: string[] = [];
  if (Array.isArray(s.security_groups) && s.security_groups.length > 0) {
    const ids: string[] = [];
    for (const [i, g] of (s.security_groups as Obj[]).entries())
      ids.push(
        await nameOrIdTo(
          deps,
          caller,
          'securityGroups',
          String(g.name ?? ''),
          `server.security_groups[${i}].name`,
        ),
      );
    out.securityGroupUuids = [...new Set(ids)];
    securityGroups.push(...(s.security_groups as Obj[]).map((g) => String(g.name)));
  }
  if (typeof s.availability_zone === 'string' && s.availability_zone.length > 0) {
    const zone = s.availability_zone.split(':')[0]!;
    out.zoneUuid = await nameOrIdTo(deps, caller, 'zones', zone, 'server.availability_zone');
  }
  const hints = obj(body['os:scheduler_hints']) ?? obj(body['OS-SCH-HNT:scheduler_hints']);
  if (hints?.group !== undefined) out.affinityGroupUuid = refId(hints.group, 'os:scheduler_hints.group');
  const count = Number(s.max_count ?? s.min_count ?? 1);
  if (count !== 1) throw invalidField('server.max_count', 'one server per request', 'COUNT_UNSUPPORTED');

  let userData: string | null = null;
  if (typeof s.user_data === 'string' && s.user_data.length > 0) {
    if (!/^[A-Za-z0-9+/=\s]+$/.test(s.user_data))
      throw invalidField('server.user_data', 'must be base64', 'INVALID_USER_DATA');
    userData = Buffer.from(s.user_data, 'base64').toString('utf8');
    const problem = userDataProblem(userData, VM_USER_DATA_MAX_BYTES);
    if (problem) throw invalidField('server.user_data', `decoded, ${problem}`, 'INVALID_USER_DATA');
  }
  let keyName: string | null = null;
  if (typeof s.key_name === 'string' && s.key_name.length > 0) {
    const key = await keypairOf(deps.db, caller, s.key_name);
    if (!key) throw invalidField('server.key_name', `no keypair ${s.key_name}`, 'KEYPAIR_NOT_FOUND');
    keyName = key.name;
    // the guest learns its key from the config drive's user-data (cloud-init)
    userData = cloudConfigWithKey(userData, key.publicKey);
  }
  const metadata = obj(s.metadata) ?? {};
  for (const [k, v] of Object.entries(metadata))
    if (typeof v !== 'string' || k.length > 255 || v.length > 255)
      throw invalidField(
        `server.metadata.${k}`,
        'keys and values are strings of at most 255 characters',
        'INVALID_METADATA',
      );
  const access = (v: unknown, field: string, version: 4 | 6): string | null => {
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string' || isIP(v) !== version)
      throw invalidField(field, `an IPv${version} address`, 'INVALID_ACCESS_IP');
    // shown as Nova shows it: IPv6 in its compressed form (the URL parser writes that form)
    return version === 6 ? new URL(`http://[${v}]/`).hostname.slice(1, -1) : v;
  };
  // the native create keeps it (vm_guest_configs) and delivers it on the config drive
  if (userData !== null) out.userData = userData;
  return {
    native: out,
    securityGroups,
    keyName,
    metadata: metadata as Record<string, string>,
    accessIpv4: access(s.accessIPv4, 'server.accessIPv4', 4),
    accessIpv6: access(s.accessIPv6, 'server.accessIPv6', 6),
  };
}

export function registerServers(scope: FastifyInstance, deps: OpenStackDeps): void {
  const vms = deps.services.get('vms') as VmService;

  scope.post('/v2.1/servers', async (request, reply) => {
    const caller = callerOf(request);
    const c = await createBody(deps, caller, (obj(request.body) ?? {}) as Obj);
    const job = await vms.createWith(caller, c.native, async (tx, vmUuid) => {
      await tx
        .insertInto('openstackServers')
        .values({
          vmUuid,
          userUuid: caller.userUuid,
          keyName: c.keyName,
          metadata: JSON.stringify(c.metadata),
          accessIpv4: c.accessIpv4,
          accessIpv6: c.accessIpv6,
        })
        .execute();
    });
    const id = job.resourceUuid!;
    return reply
      .code(202)
      .header('location', link(request, `servers/${id}`)[0]!.href)
      .send({
        server: {
          id,
          links: link(request, `servers/${id}`),
          'OS-DCF:diskConfig': 'MANUAL',
          security_groups: c.securityGroups.map((name) => ({ name })),
          adminPass: '',
        },
      });
  });

  const list = async (request: FastifyRequest, detail: boolean) => {
    const caller = callerOf(request);
    const qs = request.query as Obj;
    const q: string[] = [];
    const allTenants = caller.isAdmin && ['1', 'true', 'True', ''].includes(String(qs.all_tenants ?? 'no'));
    const project = qs.project_id ?? qs.tenant_id;
    if (caller.isAdmin && typeof project === 'string') q.push(`accountUuid=${project}`);
    else if (!allTenants) q.push(`accountUuid=${caller.accountUuid}`);
    if (qs.deleted !== 'true') q.push(`state!?=${GONE_STATES.join(',')}`);
    if (typeof qs.name === 'string') q.push(`name~=%${qs.name.replace(/[\^$]/g, '')}%`);
    if (typeof qs.status === 'string') {
      const states = statesOfStatus(qs.status);
      q.push(`state?=${states.length > 0 ? states.join(',') : 'none'}`);
    }
    if (typeof qs.image === 'string') q.push(`imageUuid=${qs.image}`);
    if (typeof qs.flavor === 'string') q.push(`instanceOfferingUuid=${qs.flavor}`);
    if (caller.isAdmin && typeof qs.host === 'string') q.push(`host.name=${qs.host}`);
    if (typeof qs['changes-since'] === 'string') q.push(`updatedAt>=${qs['changes-since']}`);
    const page = await listPage(deps, request, 'vms', { q, limit: qs.limit, marker: qs.marker });
    const servers = detail
      ? await serverViews(deps.db, request, page.items, caller.isAdmin)
      : page.items.map((v) => ({ id: v.uuid, name: v.name, links: link(request, `servers/${v.uuid}`) }));
    const body: Obj = { servers };
    if (page.more && page.items.length > 0) {
      const last = page.items[page.items.length - 1]!.uuid;
      const limit = qs.limit ? `limit=${qs.limit}&` : '';
      body.servers_links = [
        {
          rel: 'next',
          href: `${link(request, `servers${detail ? '/detail' : ''}`)[0]!.href}?${limit}marker=${last}`,
        },
      ];
    }
    return body;
  };
  scope.get('/v2.1/servers', (request) => list(request, false));
  scope.get('/v2.1/servers/detail', (request) => list(request, true));

  scope.get('/v2.1/servers/:id', async (request) => {
    const caller = callerOf(request);
    const row = await loadServer(deps, caller, (request.params as { id: string }).id);
    return { server: (await serverViews(deps.db, request, [row], caller.isAdmin))[0] };
  });

  // the server's addresses by network (the `addresses` of its detail)
  const addressesOf = async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const row = await loadServer(deps, caller, (request.params as { id: string }).id);
    return (await serverViews(deps.db, request, [row], caller.isAdmin))[0]!.addresses as Record<
      string,
      unknown[]
    >;
  };
  scope.get('/v2.1/servers/:id/ips', async (request) => ({ addresses: await addressesOf(request) }));
  scope.get('/v2.1/servers/:id/ips/:network', async (request) => {
    const { network } = request.params as { network: string };
    const addresses = await addressesOf(request);
    if (!(network in addresses))
      throw new CloudError('NotFound', 'NETWORK_NOT_FOUND', `Network ${network} could not be found.`);
    return { [network]: addresses[network] };
  });

  scope.put('/v2.1/servers/:id', async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const row = await loadServer(deps, caller, id);
    const s = obj(obj(request.body)?.server);
    if (!s) throw invalidField('server', 'required', 'FIELD_REQUIRED');
    const changes: Obj = {};
    if (typeof s.name === 'string') changes.name = s.name;
    if (typeof s.description === 'string') changes.description = s.description;
    if (Object.keys(changes).length > 0) {
      const job = await vms.update(caller, id, changes);
      // the rename is one quick step: answer with the name as it now stands
      await deps.engine.waitFor(job.uuid, 30_000);
    }
    const fresh = (await getVisibleRow(deps.db, vms.schema, id, caller)) ?? row;
    return { server: (await serverViews(deps.db, request, [fresh], caller.isAdmin))[0] };
  });

  scope.delete('/v2.1/servers/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await loadServer(deps, caller, id);
    const job = await vms.remove(caller, id);
    expungeAfter(deps, vms, caller, id, job.uuid, request);
    return reply.code(204).send();
  });
}

/** once the destroy has run, expunge the VM (Nova frees a deleted server's disk at once) */
function expungeAfter(
  deps: OpenStackDeps,
  vms: VmService,
  caller: Caller,
  id: string,
  jobUuid: string,
  request: FastifyRequest,
) {
  void (async () => {
    const done = await deps.engine.waitFor(jobUuid, 10 * 60_000);
    if (done?.state !== 'Succeeded') return;
    await vms.actions.expunge!(caller, id, {});
  })().catch((err) => request.log.warn({ err, vm: id }, 'expunge after a Nova delete failed'));
}
