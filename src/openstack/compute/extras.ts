/**
 * The smaller Nova resources: availability zones (zones), limits and quota sets (the account's
 * quotas), server groups (affinity groups), hypervisors and os-services (hosts, admins only),
 * a server's interfaces (its NICs: attach = a new NIC on a network, detach = delete the NIC) and
 * volume attachments (the volume's attach/detach actions). Changes run as the kinds' own jobs.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import { getVisibleRow } from '../../engine/query/index.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, forbidden, invalidField } from '../../kernel/errors.js';
import { isUuid } from '../../kernel/ids.js';
import { QUOTA_DEFAULTS, type QuotaName } from '../../resources/identity/quota/quota.js';
import type { OpenStackDeps } from '../deps.js';
import { listPage } from '../listing.js';
import { loadServer } from './servers.js';

type Obj = Record<string, unknown>;
const MiB = 1024 ** 2;

function admin(caller: Caller, what: string): void {
  if (!caller.isAdmin) throw forbidden(`Policy doesn't allow os_compute_api:${what} to be performed.`);
}

async function quotasOf(
  deps: OpenStackDeps,
  accountUuid: string,
): Promise<Record<QuotaName, { limit: number; used: number }>> {
  const rows = await deps.db
    .selectFrom('quotas')
    .select(['name', 'limitValue', 'used'])
    .where('accountUuid', '=', accountUuid)
    .execute();
  const out = {} as Record<QuotaName, { limit: number; used: number }>;
  for (const [name, limit] of Object.entries(QUOTA_DEFAULTS)) {
    const row = rows.find((r) => r.name === name);
    out[name as QuotaName] = {
      limit: row ? Number(row.limitValue) : limit,
      used: row ? Number(row.used) : 0,
    };
  }
  return out;
}

function groupView(g: Obj, members: string[]): Obj {
  return {
    id: g.uuid,
    name: g.name,
    policies: [
      g.policy === 'affinity'
        ? g.enforcement === 'soft'
          ? 'soft-affinity'
          : 'affinity'
        : g.enforcement === 'soft'
          ? 'soft-anti-affinity'
          : 'anti-affinity',
    ],
    members,
    metadata: {},
    project_id: g.accountUuid,
    user_id: null,
  };
}

export function registerExtras(scope: FastifyInstance, deps: OpenStackDeps): void {
  const { db } = deps;

  const zones = async () => {
    const rows = await db.selectFrom('zones').select(['name', 'state']).orderBy('name').execute();
    return {
      availabilityZoneInfo: rows.map((z) => ({
        zoneName: z.name,
        zoneState: { available: z.state === 'Enabled' },
        hosts: null,
      })),
    };
  };
  scope.get('/v2.1/os-availability-zone', zones);
  scope.get('/v2.1/os-availability-zone/detail', zones);

  scope.get('/v2.1/limits', async (request) => {
    const q = await quotasOf(deps, callerOf(request).accountUuid);
    const groups = await db
      .selectFrom('affinityGroups')
      .select(db.fn.countAll<number>().as('n'))
      .where('accountUuid', '=', callerOf(request).accountUuid)
      .executeTakeFirst();
    return {
      limits: {
        rate: [],
        absolute: {
          maxTotalInstances: q['vm.num'].limit,
          maxTotalCores: q['vm.cpu'].limit,
          maxTotalRAMSize: Math.floor(q['vm.memory'].limit / MiB),
          maxServerMeta: 128,
          maxImageMeta: 128,
          maxPersonality: 0,
          maxPersonalitySize: 0,
          maxTotalKeypairs: 100,
          maxServerGroups: 10,
          maxServerGroupMembers: 10,
          maxSecurityGroups: -1,
          maxSecurityGroupRules: -1,
          maxTotalFloatingIps: -1,
          totalInstancesUsed: q['vm.num'].used,
          totalCoresUsed: q['vm.cpu'].used,
          totalRAMUsed: Math.floor(q['vm.memory'].used / MiB),
          totalServerGroupsUsed: Number(groups?.n ?? 0),
          totalSecurityGroupsUsed: 0,
          totalFloatingIpsUsed: 0,
        },
      },
    };
  });

  const quotaSet = async (request: FastifyRequest, detail: boolean) => {
    const caller = callerOf(request);
    const { project } = request.params as { project: string };
    if (!caller.isAdmin && project !== caller.accountUuid)
      throw forbidden('a project may only read its own quotas');
    if (
      !isUuid(project) ||
      !(await db.selectFrom('accounts').select('uuid').where('uuid', '=', project).executeTakeFirst())
    )
      throw new CloudError('NotFound', 'PROJECT_NOT_FOUND', `Project ${project} could not be found.`);
    const q = await quotasOf(deps, project);
    const v = (limit: number, used: number) => (detail ? { limit, in_use: used, reserved: 0 } : limit);
    return {
      quota_set: {
        id: project,
        instances: v(q['vm.num'].limit, q['vm.num'].used),
        cores: v(q['vm.cpu'].limit, q['vm.cpu'].used),
        ram: v(Math.floor(q['vm.memory'].limit / MiB), Math.floor(q['vm.memory'].used / MiB)),
        key_pairs: v(100, 0),
        metadata_items: v(128, 0),
        server_groups: v(10, 0),
        server_group_members: v(10, 0),
        injected_files: v(0, 0),
        injected_file_content_bytes: v(0, 0),
        injected_file_path_bytes: v(0, 0),
      },
    };
  };
  scope.get('/v2.1/os-quota-sets/:project', (request) => quotaSet(request, false));
  scope.get('/v2.1/os-quota-sets/:project/detail', (request) => quotaSet(request, true));
  scope.get('/v2.1/os-quota-sets/:project/defaults', async (request) => {
    const { project } = request.params as { project: string };
    return {
      quota_set: {
        id: project,
        instances: QUOTA_DEFAULTS['vm.num'],
        cores: QUOTA_DEFAULTS['vm.cpu'],
        ram: QUOTA_DEFAULTS['vm.memory'] / MiB,
      },
    };
  });

  // server groups = affinity groups
  const groups = deps.services.get('affinity-groups')!;
  const membersOf = async (ids: string[]) =>
    ids.length === 0
      ? []
      : db
          .selectFrom('vms')
          .select(['uuid', 'affinityGroupUuid'])
          .where('affinityGroupUuid', 'in', ids)
          .where('state', 'not in', ['Destroyed', 'Expunging'])
          .execute();
  scope.get('/v2.1/os-server-groups', async (request) => {
    const qs = request.query as Obj;
    const page = await listPage(deps, request, 'affinity-groups', {
      limit: qs.limit,
      q: callerOf(request).isAdmin && qs.all_projects ? [] : [`accountUuid=${callerOf(request).accountUuid}`],
    });
    const members = await membersOf(page.items.map((g) => g.uuid as string));
    return {
      server_groups: page.items.map((g) =>
        groupView(
          g,
          members.filter((m) => m.affinityGroupUuid === g.uuid).map((m) => m.uuid),
        ),
      ),
    };
  });
  const loadGroup = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    const g = await getVisibleRow(db, groups.schema, id, callerOf(request));
    if (!g)
      throw new CloudError(
        'NotFound',
        'AFFINITY_GROUP_NOT_FOUND',
        `Instance group ${id} could not be found.`,
      );
    return g;
  };
  scope.get('/v2.1/os-server-groups/:id', async (request) => {
    const g = await loadGroup(request);
    return {
      server_group: groupView(
        g,
        (await membersOf([g.uuid as string])).map((m) => m.uuid),
      ),
    };
  });
  scope.post('/v2.1/os-server-groups', async (request) => {
    const caller = callerOf(request);
    const b = (request.body as Obj | undefined)?.server_group as Obj | undefined;
    const policy = Array.isArray(b?.policies) ? String(b.policies[0]) : String(b?.policy ?? '');
    const map: Record<string, [string, string]> = {
      affinity: ['affinity', 'hard'],
      'anti-affinity': ['anti-affinity', 'hard'],
      'soft-affinity': ['affinity', 'soft'],
      'soft-anti-affinity': ['anti-affinity', 'soft'],
    };
    const p = map[policy];
    if (!b || typeof b.name !== 'string' || !p)
      throw invalidField(
        'server_group.policies',
        'a name and one of affinity, anti-affinity, soft-affinity, soft-anti-affinity',
        'INVALID_SERVER_GROUP',
      );
    const job = await groups.create!(caller, { name: b.name, policy: p[0], enforcement: p[1] });
    await deps.engine.waitFor(job.uuid, 30_000);
    const g = await getVisibleRow(db, groups.schema, job.resourceUuid!, caller);
    if (!g)
      throw new CloudError(
        'Conflict',
        'SERVER_GROUP_CREATE_FAILED',
        `the server group was not made (job ${job.uuid})`,
      );
    return { server_group: groupView(g, []) };
  });
  scope.delete('/v2.1/os-server-groups/:id', async (request, reply) => {
    const g = await loadGroup(request);
    const job = await groups.remove!(callerOf(request), g.uuid as string);
    await deps.engine.waitFor(job.uuid, 30_000);
    return reply.code(204).send();
  });

  // hypervisors and services: hosts, for admins
  const hostRows = () => db.selectFrom('hosts').selectAll().orderBy('name').execute();
  const hypervisor = (h: Awaited<ReturnType<typeof hostRows>>[number], detail: boolean): Obj => {
    const base: Obj = {
      id: h.uuid,
      hypervisor_hostname: h.name,
      state: h.status === 'Connected' ? 'up' : 'down',
      status: h.state === 'Enabled' ? 'enabled' : 'disabled',
    };
    if (!detail) return base;
    return {
      ...base,
      hypervisor_type: h.hypervisorType === 'simulator' ? 'fake' : 'QEMU',
      hypervisor_version: 1,
      host_ip: h.managementIp,
      vcpus: h.cpuTotal,
      vcpus_used: h.cpuUsed,
      memory_mb: Math.floor(h.memoryTotal / MiB),
      memory_mb_used: Math.floor(h.memoryUsed / MiB),
      free_ram_mb: Math.floor((h.memoryTotal - h.memoryUsed) / MiB),
      running_vms: h.vmCount,
      local_gb: 0,
      local_gb_used: 0,
      free_disk_gb: 0,
      disk_available_least: 0,
      current_workload: 0,
      cpu_info: '{}',
      service: { host: h.name, id: h.uuid, disabled_reason: null },
    };
  };
  scope.get('/v2.1/os-hypervisors', async (request) => {
    admin(callerOf(request), 'os-hypervisors:list');
    return { hypervisors: (await hostRows()).map((h) => hypervisor(h, false)) };
  });
  scope.get('/v2.1/os-hypervisors/detail', async (request) => {
    admin(callerOf(request), 'os-hypervisors:list-detail');
    return { hypervisors: (await hostRows()).map((h) => hypervisor(h, true)) };
  });
  scope.get('/v2.1/os-hypervisors/:id', async (request) => {
    admin(callerOf(request), 'os-hypervisors:show');
    const { id } = request.params as { id: string };
    const h = (await hostRows()).find((x) => x.uuid === id);
    if (!h)
      throw new CloudError('NotFound', 'HOST_NOT_FOUND', `Hypervisor with ID ${id} could not be found.`);
    return { hypervisor: hypervisor(h, true) };
  });
  scope.get('/v2.1/os-services', async (request) => {
    admin(callerOf(request), 'os-services:list');
    const zones = new Map(
      (await db.selectFrom('zones').select(['uuid', 'name']).execute()).map((z) => [z.uuid, z.name]),
    );
    return {
      services: (await hostRows()).map((h) => ({
        id: h.uuid,
        binary: 'nova-compute',
        host: h.name,
        zone: zones.get(h.zoneUuid) ?? '',
        status: h.state === 'Enabled' ? 'enabled' : 'disabled',
        state: h.status === 'Connected' ? 'up' : 'down',
        updated_at: h.lastSeenAt ? new Date(h.lastSeenAt).toISOString() : null,
        disabled_reason: null,
        forced_down: false,
      })),
    };
  });

  // a server's interfaces (NICs)
  const nics = deps.services.get('vm-nics')!;
  const interfaceView = (n: Obj) => ({
    port_id: n.uuid,
    net_id: n.l3NetworkUuid,
    mac_addr: n.mac,
    port_state: 'ACTIVE',
    fixed_ips: n.ip ? [{ ip_address: n.ip, subnet_id: n.l3NetworkUuid }] : [],
  });
  scope.get('/v2.1/servers/:id/os-interface', async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await loadServer(deps, caller, id);
    const page = await listPage(deps, request, 'vm-nics', { q: [`vmUuid=${id}`], sort: 'deviceId' });
    return { interfaceAttachments: page.items.map(interfaceView) };
  });
  scope.post('/v2.1/servers/:id/os-interface', async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await loadServer(deps, caller, id);
    const a = (request.body as Obj | undefined)?.interfaceAttachment as Obj | undefined;
    if (!a || typeof a.net_id !== 'string') {
      throw invalidField(
        'interfaceAttachment.net_id',
        'give the network (net_id); ports are made with the interface',
        'NETWORK_REQUIRED',
      );
    }
    const ip = Array.isArray(a.fixed_ips) ? (a.fixed_ips[0] as Obj | undefined)?.ip_address : undefined;
    const job = await nics.create!(caller, {
      vmUuid: id,
      l3NetworkUuid: a.net_id,
      ...(typeof ip === 'string' ? { ip } : {}),
    });
    const done = await deps.engine.waitFor(job.uuid, 120_000);
    if (done?.state !== 'Succeeded')
      throw new CloudError(
        'Conflict',
        'INTERFACE_ATTACH_FAILED',
        `the interface was not attached (job ${job.uuid}: ${done?.state ?? 'running'})`,
      );
    const n = await getVisibleRow(db, nics.schema, job.resourceUuid!, caller);
    return { interfaceAttachment: interfaceView(n!) };
  });
  scope.delete('/v2.1/servers/:id/os-interface/:port', async (request, reply) => {
    const caller = callerOf(request);
    const { id, port } = request.params as { id: string; port: string };
    await loadServer(deps, caller, id);
    const n = await getVisibleRow(db, nics.schema, port, caller);
    if (!n || n.vmUuid !== id)
      throw new CloudError('NotFound', 'PORT_NOT_FOUND', `Port ${port} is not attached`);
    await nics.remove!(caller, port);
    return reply.code(202).send();
  });

  // volume attachments
  const volumes = deps.services.get('volumes')!;
  const attachmentView = (v: Obj) => ({
    id: v.uuid,
    serverId: v.vmUuid,
    volumeId: v.uuid,
    device:
      v.deviceId !== null && v.deviceId !== undefined
        ? `/dev/vd${String.fromCharCode(97 + Number(v.deviceId))}`
        : null,
  });
  scope.get('/v2.1/servers/:id/os-volume_attachments', async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await loadServer(deps, caller, id);
    const page = await listPage(deps, request, 'volumes', {
      q: [`vmUuid=${id}`, 'type=Data'],
      sort: 'createdAt',
    });
    return { volumeAttachments: page.items.map(attachmentView) };
  });
  scope.post('/v2.1/servers/:id/os-volume_attachments', async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await loadServer(deps, caller, id);
    const a = (request.body as Obj | undefined)?.volumeAttachment as Obj | undefined;
    if (!a || typeof a.volumeId !== 'string')
      throw invalidField('volumeAttachment.volumeId', 'required', 'FIELD_REQUIRED');
    const v = await getVisibleRow(db, volumes.schema, a.volumeId, caller);
    if (!v) throw new CloudError('NotFound', 'VOLUME_NOT_FOUND', `Volume ${a.volumeId} could not be found.`);
    await volumes.actions!.attach!(caller, a.volumeId, { vmUuid: id });
    return { volumeAttachment: { id: a.volumeId, serverId: id, volumeId: a.volumeId, device: null } };
  });
  scope.delete('/v2.1/servers/:id/os-volume_attachments/:volume', async (request, reply) => {
    const caller = callerOf(request);
    const { id, volume } = request.params as { id: string; volume: string };
    await loadServer(deps, caller, id);
    const v = await getVisibleRow(db, volumes.schema, volume, caller);
    if (!v || v.vmUuid !== id)
      throw new CloudError(
        'NotFound',
        'VOLUME_NOT_ATTACHED',
        `volume ${volume} is not attached to server ${id}`,
      );
    await volumes.actions!.detach!(caller, volume, {});
    return reply.code(202).send();
  });
}
