/**
 * Cinder's shapes of Nimbus volumes and snapshots. Status (Cinder polls it) comes from the
 * volume's state, its VM and the job in flight on it:
 *   Creating → creating;  Ready → available, or in-use when on a VM;
 *   a volume.attach / detach / resize / delete / expunge job running → attaching / detaching /
 *   extending / deleting;  Expunging → deleting.
 * Soft-deleted volumes (state Deleted, recoverable through the native API) are gone for Cinder.
 * Sizes are whole GiB in Cinder, bytes in Nimbus: a size is shown rounded up.
 * Volume types are primary storages (where a volume lives, what a Cinder type selects).
 */
import type { FastifyRequest } from 'fastify';
import type { Db } from '../../db/pool.js';
import { stamp } from '../network/facade.js';

export const GiB = 1024 ** 3;
export const gib = (bytes: unknown) => Math.ceil(Number(bytes ?? 0) / GiB);

const BUSY: Record<string, string> = {
  'volume.attach': 'attaching',
  'volume.detach': 'detaching',
  'volume.resize': 'extending',
  'volume.delete': 'deleting',
  'volume.expunge': 'deleting',
  'volume.create-image': 'uploading',
  'volume-snapshot.delete': 'deleting',
};

/** the unfinished jobs of these resources: uuid → the Cinder word for what they are doing */
export async function busyOf(db: Db, uuids: string[]): Promise<Map<string, string>> {
  if (uuids.length === 0) return new Map();
  const jobs = await db
    .selectFrom('jobs')
    .select(['resourceUuid', 'kind'])
    .where('resourceUuid', 'in', uuids)
    .where('state', 'in', ['Pending', 'Running'])
    .orderBy('createdAt')
    .execute();
  const out = new Map<string, string>();
  for (const j of jobs) {
    const word = BUSY[j.kind];
    if (word && j.resourceUuid) out.set(j.resourceUuid, word);
  }
  return out;
}

export function volumeStatus(v: Record<string, unknown>, busy: string | undefined): string {
  if (v.state === 'Creating') return 'creating';
  if (v.state === 'Expunging' || v.state === 'Deleted') return 'deleting';
  if (busy) return busy;
  return v.vmUuid ? 'in-use' : 'available';
}

/** Cinder `status` filter → query-language conditions */
export function statusConditions(status: string): string[] {
  switch (status) {
    case 'creating':
      return ['state=Creating'];
    case 'available':
      return ['state=Ready', 'vmUuid=null'];
    case 'in-use':
      return ['state=Ready', 'vmUuid!=null'];
    case 'deleting':
      return ['state=Expunging'];
    default:
      // attaching, error…: states that are a job's, or that Nimbus never leaves a volume in
      return ['uuid=null'];
  }
}

export interface VolumeContext {
  busy: Map<string, string>;
  /** primary storage uuid → name (the volume type) */
  types: Map<string, string>;
  /** VM uuid → host name, for attachments */
  hosts: Map<string, string | null>;
  /** account uuid → its first user (Cinder's user_id) */
  users: Map<string, string>;
  /** volume uuid → its tags as Cinder metadata */
  metadata: Map<string, Record<string, string>>;
}

export async function volumeContext(db: Db, rows: Record<string, unknown>[]): Promise<VolumeContext> {
  const storages = [...new Set(rows.map((r) => r.primaryStorageUuid).filter((x): x is string => !!x))];
  const vms = [...new Set(rows.map((r) => r.vmUuid).filter((x): x is string => !!x))];
  const accounts = [...new Set(rows.map((r) => r.accountUuid as string))];
  const ids = rows.map((r) => r.uuid as string);
  const [busy, types, hosts, users, tags] = await Promise.all([
    busyOf(
      db,
      rows.map((r) => r.uuid as string),
    ),
    storages.length
      ? db.selectFrom('primaryStorages').select(['uuid', 'name']).where('uuid', 'in', storages).execute()
      : [],
    vms.length ? db.selectFrom('vms').select(['uuid', 'hostUuid']).where('uuid', 'in', vms).execute() : [],
    // Cinder's user_id (a string, never null, in its schema): Nimbus keeps no creating user on a
    // volume, so it is the project's first user (the Keystone user named as the project)
    accounts.length
      ? db
          .selectFrom('users')
          .select(['accountUuid', 'uuid'])
          .distinctOn('accountUuid')
          .where('accountUuid', 'in', accounts)
          .orderBy('accountUuid')
          .orderBy('createdAt')
          .execute()
      : [],
    // Cinder metadata = the volume's tags (tags.ts)
    ids.length
      ? db
          .selectFrom('tags')
          .select(['resourceUuid', 'key', 'value'])
          .where('resourceUuid', 'in', ids)
          .execute()
      : [],
  ]);
  const metadata = new Map<string, Record<string, string>>();
  for (const t of tags)
    metadata.set(t.resourceUuid, { ...metadata.get(t.resourceUuid), [t.key]: t.value ?? '' });
  return {
    busy,
    types: new Map(types.map((t) => [t.uuid, t.name])),
    hosts: new Map(hosts.map((h) => [h.uuid, h.hostUuid])),
    users: new Map(users.map((u) => [u.accountUuid, u.uuid])),
    metadata,
  };
}

export function selfLinks(request: FastifyRequest, projectId: string, collection: string, id: string) {
  const host = `${request.protocol}://${request.headers.host ?? 'localhost'}`;
  return [
    { rel: 'self', href: `${host}/volume/v3/${projectId}/${collection}/${id}` },
    { rel: 'bookmark', href: `${host}/volume/${projectId}/${collection}/${id}` },
  ];
}

export function attachmentOf(v: Record<string, unknown>, hostUuid: string | null | undefined) {
  return {
    // one attachment per volume at a time in Nimbus: its id is the volume's
    id: v.uuid,
    attachment_id: v.uuid,
    volume_id: v.uuid,
    server_id: v.vmUuid,
    host_name: hostUuid ?? null,
    device: v.deviceName ? `/dev/${v.deviceName as string}` : null,
    attached_at: stamp(v.updatedAt),
  };
}

export function volumeOf(
  request: FastifyRequest,
  projectId: string,
  v: Record<string, unknown>,
  ctx: VolumeContext,
  isAdmin: boolean,
): Record<string, unknown> {
  const attached = v.vmUuid && v.state === 'Ready';
  return {
    id: v.uuid,
    name: v.name,
    description: v.description ?? null,
    status: volumeStatus(v, ctx.busy.get(v.uuid as string)),
    size: gib(v.size),
    availability_zone: 'nova',
    bootable: v.type === 'Root' || v.imageUuid ? 'true' : 'false',
    encrypted: false,
    multiattach: false,
    volume_type: v.primaryStorageUuid ? (ctx.types.get(v.primaryStorageUuid as string) ?? null) : null,
    snapshot_id: null,
    source_volid: null,
    metadata: ctx.metadata.get(v.uuid as string) ?? {},
    attachments: attached ? [attachmentOf(v, ctx.hosts.get(v.vmUuid as string))] : [],
    user_id: ctx.users.get(v.accountUuid as string) ?? '',
    replication_status: null,
    consistencygroup_id: null,
    group_id: null,
    created_at: stamp(v.createdAt),
    updated_at: stamp(v.updatedAt),
    links: selfLinks(request, projectId, 'volumes', v.uuid as string),
    ...(isAdmin
      ? {
          'os-vol-tenant-attr:tenant_id': v.accountUuid,
          'os-vol-host-attr:host': v.hostUuid ?? null,
          migration_status: null,
        }
      : {}),
  };
}

export function snapshotOf(s: Record<string, unknown>, volumeSize: unknown, busy: string | undefined) {
  return {
    id: s.uuid,
    name: s.name,
    description: s.description ?? null,
    volume_id: s.volumeUuid,
    status: s.state === 'Creating' ? 'creating' : (busy ?? 'available'),
    size: gib(volumeSize),
    progress: s.state === 'Creating' ? '0%' : '100%',
    metadata: {},
    created_at: stamp(s.createdAt),
    updated_at: stamp(s.updatedAt),
    'os-extended-snapshot-attributes:project_id': s.accountUuid,
    'os-extended-snapshot-attributes:progress': s.state === 'Creating' ? '0%' : '100%',
  };
}
