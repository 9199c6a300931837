/**
 * Wire shapes of the storage kinds (see kinds.ts for KindContract): disk offerings, backup
 * storages, images and primary storages. Sizes are bytes (`Bytes`: the CLI accepts 20G, 2T).
 * Only types come from kinds.ts: a value import would be a runtime import cycle.
 */
import { Type } from 'typebox';
import {
  Bytes,
  base,
  Description,
  Empty,
  EnabledState,
  enableDisable,
  Name,
  Nullable,
  strict,
  Timestamp,
  Uuid,
} from './common.js';
import type { KindContract } from './kind-contract.js';

/** a size that must be more than zero */
const PositiveBytes = (description: string) => Bytes(description, 1);
const ref = (description: string) => Type.String({ format: 'uuid', description });
const nameAndDescription = { name: Type.Optional(Name), description: Type.Optional(Description) };

export const diskOfferings: KindContract = {
  kind: 'disk-offerings',
  singular: 'disk-offering',
  summary: 'a data-disk size users pick when they create a volume',
  resource: Type.Object({ ...base, size: Bytes('disk size'), state: EnabledState }),
  create: Type.Object(
    { name: Name, description: Type.Optional(Description), size: PositiveBytes('disk size, e.g. 20G') },
    strict,
  ),
  update: Type.Object(nameAndDescription, strict),
  actions: enableDisable,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'size', 'state', 'createdAt'],
  adminOnly: true,
};

// agent: a nimbus-agent with a backup-storage directory (docs/hosts.md); url = its http://ip:port
export const BACKUP_STORAGE_TYPES = ['simulator', 'agent'] as const;
export const STORAGE_STATUSES = ['Connecting', 'Connected', 'Disconnected'] as const;

const zoneBody = Type.Object({ zoneUuid: ref('the zone') }, strict);

export const backupStorages: KindContract = {
  kind: 'backup-storages',
  singular: 'backup-storage',
  summary: 'where images are kept (attached to zones)',
  resource: Type.Object({
    ...base,
    type: Type.Enum(BACKUP_STORAGE_TYPES),
    url: Type.String(),
    capacityTotal: Bytes('size of the storage'),
    capacityUsed: Bytes('bytes held by images'),
    capacityAvailable: Bytes('capacityTotal − capacityUsed'),
    state: EnabledState,
    status: Type.Enum(STORAGE_STATUSES),
    zoneUuids: Type.Optional(Type.Array(Uuid, { description: 'zones it is attached to (GET of one only)' })),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      type: Type.Enum(BACKUP_STORAGE_TYPES, { description: 'storage type (simulator | agent)' }),
      url: Type.String({
        minLength: 1,
        maxLength: 2048,
        description: 'where the storage is, e.g. sim://bs-1, or http://192.0.2.5:7070 (agent)',
      }),
      agentSecret: Type.Optional(
        Type.String({
          minLength: 16,
          maxLength: 512,
          pattern: '^[\\x21-\\x7e]+$',
          description: "agent only, required there: the agent's bearer secret; write-only, never returned",
        }),
      ),
      capacity: Type.Optional(PositiveBytes('simulator only: size of the simulated storage (default 1T)')),
    },
    strict,
  ),
  update: Type.Object(nameAndDescription, strict),
  actions: {
    ...enableDisable,
    reconnect: { summary: 'reconnect to the storage and re-read its capacity', body: Empty },
    'attach-zone': { summary: 'make its images usable in a zone', body: zoneBody },
    'detach-zone': { summary: 'stop using it in a zone (its images stay on it)', body: zoneBody },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'type', 'state', 'status', 'capacityUsed', 'capacityTotal'],
  adminOnly: true,
};

export const IMAGE_FORMATS = ['qcow2', 'raw', 'iso'] as const;
export const IMAGE_MEDIA_TYPES = ['RootVolumeTemplate', 'DataVolumeTemplate', 'ISO'] as const;
export const IMAGE_PLATFORMS = ['Linux', 'Windows', 'Other'] as const;
export const IMAGE_STATES = ['Downloading', 'Ready', 'Error', 'Deleted'] as const;

export const images: KindContract = {
  kind: 'images',
  singular: 'image',
  summary: 'a template VMs and volumes are created from (kept on backup storage)',
  resource: Type.Object({
    ...base,
    url: Type.String(),
    format: Type.Enum(IMAGE_FORMATS),
    mediaType: Type.Enum(IMAGE_MEDIA_TYPES),
    platform: Type.Enum(IMAGE_PLATFORMS),
    guestOsType: Nullable(Type.String()),
    size: Bytes('virtual size (the disk a VM sees)'),
    actualSize: Bytes('bytes stored on the backup storage'),
    minDisk: Bytes('smallest root disk a VM from it may have'),
    state: Type.Enum(IMAGE_STATES),
    isPublic: Type.Boolean({ description: 'every account sees it' }),
    backupStorageUuid: Nullable(Uuid),
    deletedAt: Nullable(Timestamp),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      url: Type.String({
        pattern: '^(https?|ftp|file)://\\S+$',
        maxLength: 2048,
        description: 'where to download it from (http, https, ftp or file URL)',
      }),
      format: Type.Enum(IMAGE_FORMATS, { description: 'qcow2, raw or iso' }),
      mediaType: Type.Optional(
        Type.Enum(IMAGE_MEDIA_TYPES, { description: 'default: ISO for iso, else RootVolumeTemplate' }),
      ),
      platform: Type.Optional(Type.Enum(IMAGE_PLATFORMS, { description: 'default Linux' })),
      guestOsType: Type.Optional(Type.String({ maxLength: 255, description: 'e.g. ubuntu22.04' })),
      minDisk: Type.Optional(Bytes('smallest root disk a VM from it may have (default 0)')),
      backupStorageUuid: Type.Optional(
        ref('backup storage to keep it on (default: the Connected one with the most free space)'),
      ),
      isPublic: Type.Optional(Type.Boolean({ description: 'admin only: every account sees it' })),
    },
    strict,
  ),
  update: Type.Object(
    {
      ...nameAndDescription,
      platform: Type.Optional(Type.Enum(IMAGE_PLATFORMS)),
      guestOsType: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
      minDisk: Type.Optional(Bytes('smallest root disk a VM from it may have')),
      isPublic: Type.Optional(Type.Boolean({ description: 'admin only' })),
    },
    strict,
  ),
  actions: {
    recover: { summary: 'bring a Deleted image back (Ready)', body: Empty },
    expunge: { summary: 'remove a Deleted image for good (frees its backup storage)', body: Empty },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'format', 'platform', 'state', 'size', 'isPublic'],
  adminOnly: false,
};

export const PRIMARY_STORAGE_TYPES = ['local', 'nfs', 'shared-mount', 'ceph'] as const;
export const PRIMARY_STORAGE_STATES = ['Enabled', 'Disabled', 'Maintenance'] as const;

const clusterBody = Type.Object({ clusterUuid: ref('the cluster (in the storage’s zone)') }, strict);

export const HostShare = Type.Object({
  hostUuid: Uuid,
  capacityTotal: Bytes('this host’s share'),
  capacityUsed: Bytes('used on this host'),
  capacityAvailable: Bytes('capacityTotal × overProvisioningRatio − capacityUsed'),
});

export const primaryStorages = {
  kind: 'primary-storages',
  singular: 'primary-storage',
  summary: 'where volumes and image caches live (attached to clusters)',
  resource: Type.Object({
    ...base,
    zoneUuid: Uuid,
    type: Type.Enum(PRIMARY_STORAGE_TYPES),
    url: Type.String(),
    capacity: Bytes('as configured (local storage: per host)'),
    capacityTotal: Bytes('total (local storage: the sum over its hosts)'),
    capacityUsed: Bytes('reserved by volumes and image caches'),
    capacityAvailable: Bytes('capacityTotal × overProvisioningRatio − capacityUsed'),
    overProvisioningRatio: Type.Number(),
    state: Type.Enum(PRIMARY_STORAGE_STATES),
    status: Type.Enum(STORAGE_STATUSES),
    clusterUuids: Type.Optional(Type.Array(Uuid, { description: 'attached clusters (GET of one only)' })),
    hosts: Type.Optional(
      Type.Array(HostShare, { description: 'local storage: per-host capacity (GET of one only)' }),
    ),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      zoneUuid: ref('zone of the storage'),
      type: Type.Enum(PRIMARY_STORAGE_TYPES, { description: 'local, nfs, shared-mount or ceph' }),
      url: Type.String({
        minLength: 1,
        maxLength: 2048,
        description: 'e.g. /var/lib/nimbus or nfs://10.0.0.5/vol',
      }),
      capacity: PositiveBytes('size (local storage: of each host’s share), e.g. 2T'),
      overProvisioningRatio: Type.Optional(
        Type.Number({
          minimum: 1,
          maximum: 100,
          description: 'thin provisioning: place up to capacity × this (default 1)',
        }),
      ),
    },
    strict,
  ),
  update: Type.Object(
    {
      ...nameAndDescription,
      overProvisioningRatio: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
      capacity: Type.Optional(PositiveBytes('new size; it may only grow')),
    },
    strict,
  ),
  actions: {
    ...enableDisable,
    maintain: { summary: 'put it in maintenance (nothing new is placed on it)', body: Empty },
    'attach-cluster': { summary: 'let the hosts of a cluster use it', body: clusterBody },
    'detach-cluster': {
      summary: 'stop a cluster using it (refused while its VMs have volumes on it)',
      body: clusterBody,
    },
    'clean-image-cache': {
      summary: 'remove cached images no volume uses (frees their capacity)',
      body: Empty,
    },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'type', 'state', 'capacityUsed', 'capacityTotal', 'capacityAvailable'],
  adminOnly: true,
} satisfies KindContract;

export const STORAGE_KINDS: KindContract[] = [diskOfferings, backupStorages, images, primaryStorages];
