/**
 * Wire shapes of the compute kinds (see kinds.ts for KindContract): instance offerings (flavors),
 * affinity groups and VMs. Sizes are bytes; the CLI accepts 512M, 4G, 1T.
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
  RefUuid,
  RenameBody,
  strict,
  Timestamp,
  Uuid,
} from './common.js';
import type { KindContract } from './kind-contract.js';

const Strategy = Type.Enum(['spread', 'pack'], {
  description: 'placement: spread VMs over hosts or pack them onto few (default: the platform setting)',
});
const Cpu = (description: string) => Type.Integer({ minimum: 1, maximum: 1024, description });
const MemoryBytes = (description: string) => Bytes(description, 16 * 1024 ** 2);
/** `--offering <name>` in the CLI, besides `--instance-offering` (the name users type, as in the examples) */
const OfferingRef = (description: string) =>
  Type.String({ format: 'uuid', description, 'x-cli-ref-alias': 'offering' });

export const instanceOfferings: KindContract = {
  kind: 'instance-offerings',
  singular: 'instance-offering',
  summary: 'a VM size (flavor): vCPUs and memory, with an optional placement strategy',
  resource: Type.Object({
    ...base,
    cpu: Type.Integer({ description: 'vCPUs' }),
    memory: Bytes('memory'),
    allocatorStrategy: Nullable(Strategy),
    state: EnabledState,
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      cpu: Cpu('vCPUs'),
      memory: MemoryBytes('memory (at least 16 MiB)'),
      allocatorStrategy: Type.Optional(Strategy),
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      allocatorStrategy: Type.Optional(Nullable(Strategy)),
    },
    strict,
  ),
  actions: enableDisable,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'cpu', 'memory', 'state'],
  adminOnly: true,
};

export const AFFINITY_POLICIES = ['affinity', 'anti-affinity'] as const;
export const ENFORCEMENTS = ['hard', 'soft'] as const;

export const affinityGroups: KindContract = {
  kind: 'affinity-groups',
  singular: 'affinity-group',
  summary: 'VMs kept together on one host (affinity) or apart on different hosts (anti-affinity)',
  resource: Type.Object({
    ...base,
    policy: Type.Enum(AFFINITY_POLICIES),
    enforcement: Type.Enum(ENFORCEMENTS),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      policy: Type.Enum(AFFINITY_POLICIES, {
        description: 'affinity: same host; anti-affinity: different hosts',
      }),
      enforcement: Type.Optional(
        Type.Enum(ENFORCEMENTS, {
          description: 'hard: refuse a placement that breaks the policy; soft: prefer (default hard)',
        }),
      ),
    },
    strict,
  ),
  update: RenameBody,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'policy', 'enforcement'],
  adminOnly: false,
};

/** the most user-data a VM create takes, in bytes of its UTF-8 text (as Nova's 64 KiB) */
export const VM_USER_DATA_MAX_BYTES = 65536;

/** `GET /v1/vms/{uuid}/serial-log?tail=N`: N bytes of the end (default and most) */
export const SERIAL_LOG_TAIL_DEFAULT = 64 * 1024;
export const SERIAL_LOG_TAIL_MAX = 1024 * 1024;
/** what a host keeps of a VM's serial output (nimbus-agent trims the file to it) */
export const SERIAL_LOG_KEEP_BYTES = 4 * 1024 * 1024;

export const VmSerialLog = Type.Object({
  vmUuid: Type.String({ format: 'uuid' }),
  hostUuid: Type.String({ format: 'uuid', description: 'the host the log was read from' }),
  log: Type.String({
    description: 'the end of the serial console output, UTF-8 (a cut character shows as U+FFFD)',
  }),
  size: Type.Integer({ description: 'bytes the host keeps of the log (more than log holds when cut)' }),
  truncated: Type.Boolean({ description: 'log is only the last `tail` bytes of what the host keeps' }),
});

export const VM_CREATE_STRATEGIES = ['start', 'create-stopped'] as const;
/** what the platform does when a VM dies (docs/compute.md "HA levels") */
export const VM_HA_LEVELS = ['none', 'restart-on-failure', 'restart-on-host-failure'] as const;
const HaLevel = (description: string) => Type.Enum(VM_HA_LEVELS, { description });
const HA_LEVEL =
  'none; restart-on-failure: a guest that dies is started again on its host; restart-on-host-failure: that, and when its host fails (fenced, with host HA on) it restarts on another host';

export const vms = {
  createRules: {
    description: 'an instance offering, or cpu and memory (not both)',
    oneOf: [
      {
        required: ['instanceOfferingUuid'],
        not: { anyOf: [{ required: ['cpu'] }, { required: ['memory'] }] },
      },
      { required: ['cpu', 'memory'], not: { required: ['instanceOfferingUuid'] } },
    ],
  },
  kind: 'vms',
  singular: 'vm',
  summary: 'a virtual machine: created from an image and an offering, placed by the scheduler',
  resource: Type.Object({
    ...base,
    state: Type.String({
      description: 'Creating, Starting, Running, Stopping, Stopped, … (docs/compute.md)',
    }),
    task: Nullable(Type.String({ description: 'the operation in flight, if any' })),
    powerState: Type.String({ description: 'what the hypervisor last reported' }),
    zoneUuid: Nullable(Uuid),
    clusterUuid: Nullable(Uuid),
    hostUuid: Nullable(Type.String({ format: 'uuid', description: 'host whose capacity the VM holds' })),
    lastHostUuid: Nullable(Type.String({ format: 'uuid', description: 'host the VM last ran on' })),
    instanceOfferingUuid: Nullable(Uuid),
    imageUuid: Nullable(Uuid),
    rootVolumeUuid: Nullable(Uuid),
    cpu: Type.Integer({ description: 'vCPUs' }),
    memory: Bytes('memory'),
    platform: Nullable(Type.String()),
    affinityGroupUuid: Nullable(Uuid),
    destroyedAt: Nullable(Timestamp),
    haLevel: HaLevel(HA_LEVEL),
    hasUserData: Type.Boolean({
      description: 'the VM was given user-data (the text itself is never shown: it may hold secrets)',
    }),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      imageUuid: RefUuid('image of the root volume (Ready, yours or public)'),
      instanceOfferingUuid: Type.Optional(OfferingRef('offering giving cpu and memory (or give both)')),
      cpu: Type.Optional(Cpu('vCPUs, without an offering')),
      memory: Type.Optional(MemoryBytes('memory, without an offering')),
      rootDiskSize: Type.Optional(Bytes('root volume size (default and minimum: the image’s)')),
      dataDiskOfferingUuids: Type.Optional(
        Type.Array(Type.String({ format: 'uuid' }), {
          maxItems: 24,
          description: 'one data volume per disk offering',
        }),
      ),
      dataDiskSizes: Type.Optional(
        Type.Array(Bytes('size of a data volume', 1), {
          maxItems: 24,
          description: 'one data volume per size',
        }),
      ),
      deleteDataDisksWithVm: Type.Optional(
        Type.Boolean({ description: 'expunge the data volumes with the VM (default: they outlive it)' }),
      ),
      zoneUuid: Type.Optional(RefUuid('place in this zone')),
      clusterUuid: Type.Optional(RefUuid('place in this cluster')),
      hostUuid: Type.Optional(RefUuid('admin only: place on this host')),
      primaryStorageUuid: Type.Optional(RefUuid('put the volumes on this primary storage')),
      affinityGroupUuid: Type.Optional(RefUuid('affinity group to join')),
      strategy: Type.Optional(
        Type.Enum(VM_CREATE_STRATEGIES, { description: 'start it (default) or only create it, Stopped' }),
      ),
      haLevel: Type.Optional(HaLevel(`${HA_LEVEL} (default none)`)),
      l3NetworkUuids: Type.Optional(
        Type.Array(Type.String({ format: 'uuid' }), {
          maxItems: 8,
          description: 'L3 networks, one NIC on each, in device order (eth0 first)',
          'x-cli-ref-alias': 'l3',
        }),
      ),
      defaultL3NetworkUuid: Type.Optional(
        RefUuid('the L3 network of the default route (one of l3NetworkUuids; default: the first)'),
      ),
      staticIps: Type.Optional(
        Type.Array(
          Type.Object(
            {
              l3NetworkUuid: RefUuid('one of l3NetworkUuids'),
              ip: Type.String({ minLength: 2, maxLength: 45, description: 'the address the NIC gets there' }),
            },
            strict,
          ),
          { maxItems: 8, description: 'addresses to give instead of free ones from IPAM' },
        ),
      ),
      securityGroupUuids: Type.Optional(
        Type.Array(Type.String({ format: 'uuid' }), {
          maxItems: 16,
          uniqueItems: true,
          description: 'security groups (yours) every NIC of the VM joins',
        }),
      ),
      userData: Type.Optional(
        Type.String({
          maxLength: VM_USER_DATA_MAX_BYTES,
          'x-cli-file': true,
          description: `user-data for cloud-init, as plain text (a #cloud-config document, a script, a MIME multipart), at most ${VM_USER_DATA_MAX_BYTES / 1024} KiB in UTF-8; the guest reads it from its config drive`,
        }),
      ),
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      haLevel: Type.Optional(HaLevel(HA_LEVEL)),
    },
    strict,
  ),
  actions: {
    start: { summary: 'start a Stopped VM (re-placed on a host with room)', body: Empty },
    stop: {
      summary: 'stop gracefully, powering off after the stop timeout (or at once with force)',
      body: Type.Object({ force: Type.Optional(Type.Boolean({ description: 'power off at once' })) }, strict),
    },
    reboot: { summary: 'reboot a Running VM', body: Empty },
    pause: { summary: 'pause a Running VM (it keeps its memory and host)', body: Empty },
    resume: { summary: 'resume a Paused VM', body: Empty },
    'change-offering': {
      summary: 'change cpu and memory of a Stopped VM (quota adjusted)',
      body: Type.Object(
        {
          instanceOfferingUuid: Type.Optional(OfferingRef('the new offering (or give cpu and memory)')),
          cpu: Type.Optional(Cpu('vCPUs')),
          memory: Type.Optional(MemoryBytes('memory')),
        },
        strict,
      ),
    },
    migrate: {
      admin: true,
      summary: 'admin: live-migrate a Running VM on shared storage to another host of its cluster',
      body: Type.Object(
        { hostUuid: Type.Optional(RefUuid('target host (default: the scheduler picks one)')) },
        strict,
      ),
    },
    recover: { summary: 'bring a Destroyed VM back, Stopped', body: Empty },
    expunge: { summary: 'remove a Destroyed VM for good, with its root volume', body: Empty },
    rebuild: {
      summary:
        'give a Stopped VM a fresh root disk cloned from its image (the old disk and its snapshots are deleted)',
      body: Empty,
    },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'state', 'cpu', 'memory', 'hostUuid', 'createdAt'],
  adminOnly: false,
} satisfies KindContract;

export const COMPUTE_KINDS: KindContract[] = [instanceOfferings, affinityGroups, vms];
