/**
 * A Nimbus VM as a Nova server (v2.1 shape): `addresses` from its NICs keyed by network (L3)
 * name, volumes attached, security groups of its NICs, the key name and metadata recorded by the
 * façade (openstack_servers), the zone as availability zone; admins also see the host
 * (`OS-EXT-SRV-ATTR:*`). Read for a whole page at once: one query per related table.
 */
import type { FastifyRequest } from 'fastify';
import type { Db } from '../../db/pool.js';
import { OPENSTACK_PREFIX } from '../deps.js';
import { baseUrl } from '../urls.js';
import { novaState } from './server-state.js';

type Row = Record<string, unknown>;

const iso = (v: unknown): string | null =>
  v ? new Date(v as string).toISOString().replace(/\.\d{3}Z$/, 'Z') : null;

export function link(request: FastifyRequest, path: string) {
  const b = `${baseUrl(request)}${OPENSTACK_PREFIX.compute}`;
  return [
    { rel: 'self', href: `${b}/v2.1/${path}` },
    { rel: 'bookmark', href: `${b}/${path}` },
  ];
}

export async function serverViews(
  db: Db,
  request: FastifyRequest,
  vms: Row[],
  isAdmin: boolean,
): Promise<Row[]> {
  const ids = vms.map((v) => v.uuid as string);
  if (ids.length === 0) return [];
  const hostIds = [
    ...new Set(vms.map((v) => v.hostUuid as string | null).filter((h): h is string => h !== null)),
  ];
  const accounts = [...new Set(vms.map((v) => v.accountUuid as string))];
  const [nics, volumes, groups, extras, zones, hosts, users] = await Promise.all([
    db
      .selectFrom('vmNics as n')
      .innerJoin('l3Networks as l', 'l.uuid', 'n.l3NetworkUuid')
      .select(['n.vmUuid', 'n.ip', 'n.mac', 'n.deviceId', 'l.name as network', 'l.ipVersion'])
      .where('n.vmUuid', 'in', ids)
      .orderBy('n.deviceId')
      .execute(),
    db
      .selectFrom('volumes')
      .select(['uuid', 'vmUuid', 'type', 'deleteWithVm'])
      .where('vmUuid', 'in', ids)
      .where('type', '=', 'Data')
      .execute(),
    db
      .selectFrom('vmNics as n')
      .innerJoin('vmNicSecurityGroups as s', 's.vmNicUuid', 'n.uuid')
      .innerJoin('securityGroups as g', 'g.uuid', 's.securityGroupUuid')
      .select(['n.vmUuid', 'g.name'])
      .where('n.vmUuid', 'in', ids)
      .distinct()
      .execute(),
    db.selectFrom('openstackServers').selectAll().where('vmUuid', 'in', ids).execute(),
    db.selectFrom('zones').select(['uuid', 'name']).execute(),
    isAdmin && hostIds.length > 0
      ? db.selectFrom('hosts').select(['uuid', 'name']).where('uuid', 'in', hostIds).execute()
      : Promise.resolve([] as { uuid: string; name: string }[]),
    // Nova's user_id is a string (never null in its schema): Nimbus keeps no creating user on a
    // VM, so it is the project's first user (the Keystone user named as the project)
    db
      .selectFrom('users')
      .select(['accountUuid', 'uuid'])
      .distinctOn('accountUuid')
      .where('accountUuid', 'in', accounts)
      .orderBy('accountUuid')
      .orderBy('createdAt')
      .execute(),
  ]);
  const userOf = new Map(users.map((u) => [u.accountUuid, u.uuid]));
  const zoneName = new Map(zones.map((z) => [z.uuid, z.name]));
  const hostName = new Map(hosts.map((h) => [h.uuid, h.name]));
  return vms.map((vm) => {
    const id = vm.uuid as string;
    const st = novaState(vm as { state: string; task: string | null; powerState: string });
    const addresses: Record<string, Row[]> = {};
    for (const n of nics.filter((x) => x.vmUuid === id)) {
      if (!n.ip) continue;
      const list = addresses[n.network] ?? [];
      addresses[n.network] = list;
      list.push({
        version: n.ip.includes(':') ? 6 : 4,
        addr: n.ip,
        'OS-EXT-IPS:type': 'fixed',
        'OS-EXT-IPS-MAC:mac_addr': n.mac,
      });
    }
    const extra = extras.find((e) => e.vmUuid === id);
    const sgNames = [...new Set(groups.filter((g) => g.vmUuid === id).map((g) => g.name))];
    const view: Row = {
      id,
      name: vm.name,
      status: st.status,
      tenant_id: vm.accountUuid,
      // the creating user when Nova made it; else the project's first user (Nova's schema has a
      // string, never null, and a VM made through /v1 keeps no creating user)
      user_id: extra?.userUuid ?? userOf.get(vm.accountUuid as string) ?? '',
      metadata: extra ? JSON.parse(extra.metadata) : {},
      hostId: vm.hostUuid ? String(vm.hostUuid).replace(/-/g, '') : '',
      image: vm.imageUuid ? { id: vm.imageUuid, links: link(request, `images/${vm.imageUuid}`) } : '',
      flavor: vm.instanceOfferingUuid
        ? { id: vm.instanceOfferingUuid, links: link(request, `flavors/${vm.instanceOfferingUuid}`) }
        : { id: '', links: [] },
      created: iso(vm.createdAt),
      updated: iso(vm.updatedAt),
      addresses,
      accessIPv4: extra?.accessIpv4 ?? '',
      accessIPv6: extra?.accessIpv6 ?? '',
      links: link(request, `servers/${id}`),
      'OS-DCF:diskConfig': 'MANUAL',
      progress: st.status === 'ACTIVE' ? 100 : 0,
      'OS-EXT-AZ:availability_zone': vm.zoneUuid ? (zoneName.get(vm.zoneUuid as string) ?? '') : '',
      config_drive: 'True',
      key_name: extra?.keyName ?? null,
      'OS-SRV-USG:launched_at': vm.state === 'Creating' ? null : iso(vm.createdAt),
      'OS-SRV-USG:terminated_at': iso(vm.destroyedAt),
      'OS-EXT-STS:task_state': st.taskState,
      'OS-EXT-STS:vm_state': st.vmState,
      'OS-EXT-STS:power_state': st.powerState,
      'os-extended-volumes:volumes_attached': volumes
        .filter((v) => v.vmUuid === id)
        .map((v) => ({ id: v.uuid, delete_on_termination: v.deleteWithVm })),
      security_groups: sgNames.map((name) => ({ name })),
    };
    if (isAdmin) {
      const host = (vm.hostUuid as string | null) ?? null;
      view['OS-EXT-SRV-ATTR:host'] = host ? (hostName.get(host) ?? null) : null;
      view['OS-EXT-SRV-ATTR:hypervisor_hostname'] = host ? (hostName.get(host) ?? null) : null;
      view['OS-EXT-SRV-ATTR:instance_name'] = `instance-${id}`;
    }
    return view;
  });
}
