/**
 * Wire shapes of the volumes kinds (see kinds.ts for KindContract): volumes (root and data
 * disks), volume snapshots (a tree per volume) and per-account quotas. Sizes are bytes.
 */
import { Type } from 'typebox';
import {
  BigCount,
  Bytes,
  base,
  Description,
  Empty,
  Name,
  Nullable,
  RefUuid,
  RenameBody,
  strict,
  Timestamp,
  Uuid,
} from './common.js';
import type { KindContract } from './kind-contract.js';

export const VOLUME_TYPES = ['Root', 'Data'] as const;
/** Creating while the storage makes it; Deleted = soft-deleted, recoverable until expunged */
export const VOLUME_STATES = ['Creating', 'Ready', 'Deleted', 'Expunging'] as const;
export const VOLUME_FORMATS = ['qcow2', 'raw'] as const;
export const SNAPSHOT_STATES = ['Creating', 'Ready'] as const;

const ImageFrom = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    platform: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'guest platform, e.g. Linux (default: Linux)',
      }),
    ),
    guestOsType: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'e.g. ubuntu-24.04' }),
    ),
  },
  strict,
);

export const volumes: KindContract = {
  createRules: {
    description: 'exactly one of diskOfferingUuid and size',
    oneOf: [{ required: ['diskOfferingUuid'] }, { required: ['size'] }],
  },
  kind: 'volumes',
  singular: 'volume',
  summary:
    'a virtual disk on primary storage: a VM’s root disk, or a data disk attachable to one VM at a time',
  resource: Type.Object({
    ...base,
    type: Type.Enum(VOLUME_TYPES),
    state: Type.Enum(VOLUME_STATES),
    vmUuid: Nullable(Uuid),
    deviceId: Nullable(Type.Integer({ description: 'disk position on its VM: 0 = root, 1, 2, …' })),
    deviceName: Nullable(Type.String({ description: 'vda, vdb, … (from deviceId)' })),
    primaryStorageUuid: Nullable(Uuid),
    hostUuid: Nullable(Uuid),
    diskOfferingUuid: Nullable(Uuid),
    imageUuid: Nullable(Uuid),
    size: Bytes('virtual size'),
    actualSize: Bytes('space used on the storage'),
    format: Type.String(),
    path: Nullable(Type.String()),
    deleteWithVm: Type.Boolean(),
    deletedAt: Nullable(Timestamp),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      diskOfferingUuid: Type.Optional(RefUuid('take the size from this disk offering (or give size)')),
      size: Type.Optional(Bytes('size (or give diskOfferingUuid)', 1)),
      primaryStorageUuid: Type.Optional(RefUuid('primary storage to create it on (default: one with room)')),
      vmUuid: Type.Optional(RefUuid('attach it to this VM once created')),
      format: Type.Optional(Type.Enum(VOLUME_FORMATS, { description: 'disk format (default qcow2)' })),
      deleteWithVm: Type.Optional(Type.Boolean({ description: 'expunge it with its VM (default false)' })),
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      deleteWithVm: Type.Optional(Type.Boolean()),
    },
    strict,
  ),
  actions: {
    attach: {
      summary: 'attach it to a VM (Running, Stopped or Paused); it gets the lowest free device',
      body: Type.Object({ vmUuid: RefUuid('the VM') }, strict),
    },
    detach: { summary: 'detach it from its VM (root volumes stay)', body: Empty },
    resize: {
      summary: 'grow it (never shrink)',
      body: Type.Object({ size: Bytes('the new size', 1) }, strict),
    },
    recover: { summary: 'undo a delete: Deleted → Ready', body: Empty },
    expunge: { summary: 'remove a Deleted volume for good, with its snapshots', body: Empty },
    'create-image': { summary: 'make an image of a root volume (its VM Stopped)', body: ImageFrom },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'type', 'state', 'size', 'vmUuid', 'deviceName'],
  adminOnly: false,
};

export const volumeSnapshots: KindContract = {
  kind: 'volume-snapshots',
  singular: 'volume-snapshot',
  summary: 'a point-in-time copy of a volume; each volume’s snapshots form a tree',
  resource: Type.Object({
    ...base,
    volumeUuid: Uuid,
    parentUuid: Nullable(Uuid),
    primaryStorageUuid: Nullable(Uuid),
    size: Bytes('space it takes'),
    state: Type.Enum(SNAPSHOT_STATES),
    latest: Type.Boolean({ description: 'the volume’s current data is based on it' }),
    path: Nullable(Type.String()),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      volumeUuid: RefUuid('the volume to snapshot'),
    },
    strict,
  ),
  update: RenameBody,
  actions: {
    revert: {
      summary: 'put its volume back to this snapshot (the VM Stopped, or the volume detached)',
      body: Empty,
    },
    'create-image': { summary: 'make an image of this snapshot', body: ImageFrom },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'volumeUuid', 'parentUuid', 'latest', 'state', 'createdAt'],
  adminOnly: false,
};

/** Quota names with their limit's schema; keep in step with QUOTA_NAMES (resources/quota). */
const Count = BigCount;
export const QUOTA_LIMITS = {
  'vm.num': Count('VMs'),
  'vm.cpu': Count('vCPUs over all VMs'),
  'vm.memory': Bytes('memory over all VMs'),
  'volume.data.num': Count('data volumes'),
  'volume.capacity': Bytes('size of all volumes, root and data'),
  'snapshot.num': Count('volume snapshots'),
  'image.num': Count('images'),
};

export const quotas: KindContract = {
  kind: 'quotas',
  singular: 'quota',
  summary: 'per-account limits and their usage; the admin changes an account’s limits',
  resource: Type.Object({
    uuid: Uuid,
    accountUuid: Uuid,
    name: Type.Enum(Object.keys(QUOTA_LIMITS), { description: 'what is limited' }),
    limit: Type.Integer(),
    used: Type.Integer(),
    updatedAt: Timestamp,
  }),
  update: Type.Object(
    Object.fromEntries(Object.entries(QUOTA_LIMITS).map(([k, s]) => [k, Type.Optional(s)])),
    { ...strict, minProperties: 1 },
  ),
  deletable: false,
  taggable: false,
  columns: ['accountUuid', 'name', 'used', 'limit'],
  adminOnly: true,
};

export const VOLUMES_KINDS: KindContract[] = [volumes, volumeSnapshots, quotas];
