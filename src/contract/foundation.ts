/**
 * Wire shapes of the foundation kinds: zones, clusters, hosts, accounts, users, jobs, events, tags.
 */
import { Type } from 'typebox';
import {
  Bytes,
  base,
  Description,
  Empty,
  EnabledState,
  Event,
  enableDisable,
  Job,
  Name,
  Nullable,
  RenameBody,
  strict,
  Tag,
  Timestamp,
  Uuid,
} from './common.js';

import type { KindContract } from './kind-contract.js';

// simulator: hosts answered in-process; kvm: a nimbus-agent on a real machine (docs/hosts.md)
export const HYPERVISOR_TYPES = ['simulator', 'kvm'] as const;
const HypervisorType = Type.Enum(HYPERVISOR_TYPES, { description: 'hypervisor type (simulator | kvm)' });

/** the port nimbus-agent listens on unless a host says otherwise */
export const DEFAULT_AGENT_PORT = 7070;

export const zones = {
  kind: 'zones',
  singular: 'zone',
  summary: 'a failure domain / data centre: holds clusters',
  resource: Type.Object({ ...base, state: EnabledState }),
  create: Type.Object({ name: Name, description: Type.Optional(Description) }, strict),
  update: RenameBody,
  actions: enableDisable,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'state', 'createdAt'],
  adminOnly: true,
} satisfies KindContract;

const HOST_HA =
  'host HA: a host of this cluster that stops answering is fenced, then its VMs of HA level restart-on-host-failure restart on other hosts (docs/hosts.md "Host HA")';

export const clusters = {
  kind: 'clusters',
  singular: 'cluster',
  summary: 'a group of hosts of one hypervisor type in a zone',
  resource: Type.Object({
    ...base,
    zoneUuid: Uuid,
    hypervisorType: Type.String(),
    state: EnabledState,
    hostHa: Type.Boolean({ description: HOST_HA }),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      zoneUuid: Type.String({ format: 'uuid', description: 'zone to create the cluster in' }),
      hypervisorType: HypervisorType,
      hostHa: Type.Optional(Type.Boolean({ description: `${HOST_HA} (default false)` })),
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      hostHa: Type.Optional(Type.Boolean({ description: HOST_HA })),
    },
    strict,
  ),
  actions: enableDisable,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'hypervisorType', 'state', 'zoneUuid'],
  adminOnly: true,
} satisfies KindContract;

/** PreMaintenance: its VMs are being moved away (nothing new is placed); Maintenance: done */
export const HOST_STATES = ['Enabled', 'Disabled', 'PreMaintenance', 'Maintenance'] as const;
export const MAINTENANCE_POLICIES = ['fail', 'stop'] as const;
export const HOST_STATUSES = ['Connecting', 'Connected', 'Disconnected'] as const;

/** a kvm host's BMC, for fencing it with IPMI (host HA): all three together; stored apart, never returned */
const IPMI_FIELDS = {
  ipmiAddress: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 253,
      pattern: '^[A-Za-z0-9.:-]+$',
      description: 'kvm only: the address of its BMC, to fence it with IPMI (host HA)',
    }),
  ),
  ipmiUsername: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: '^[\\x21-\\x7e]+$',
      description: 'kvm only: the BMC user',
    }),
  ),
  ipmiPassword: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: '^[\\x20-\\x7e]+$',
      description: 'kvm only: the BMC password; write-only, never returned',
    }),
  ),
};

export const hosts = {
  kind: 'hosts',
  singular: 'host',
  summary: 'a hypervisor machine (simulated or KVM) in a cluster',
  resource: Type.Object({
    ...base,
    zoneUuid: Uuid,
    clusterUuid: Uuid,
    hypervisorType: Type.String(),
    managementIp: Type.String(),
    state: Type.Enum(HOST_STATES),
    status: Type.Enum(HOST_STATUSES),
    cpuTotal: Type.Integer({ description: 'logical CPUs of the host' }),
    cpuUsed: Type.Integer({ description: 'CPUs allocated to VMs' }),
    memoryTotal: Bytes('memory of the host'),
    memoryUsed: Bytes('memory allocated to VMs'),
    agentPort: Nullable(Type.Integer({ description: 'kvm: the port of its nimbus-agent' })),
    accelerator: Nullable(
      Type.String({
        description: 'kvm: how the agent runs guests (kvm, or tcg emulation); from its last connect',
      }),
    ),
    hypervisorVersion: Nullable(
      Type.String({
        description: 'what the host runs guests with (e.g. QEMU 7.2.22); from its last connect',
      }),
    ),
    fencedAt: Nullable(
      Type.String({
        format: 'date-time',
        description: 'host HA: when the host was last fenced (until it answers again)',
      }),
    ),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      clusterUuid: Type.String({ format: 'uuid', description: 'cluster to add the host to' }),
      managementIp: Type.String({
        format: 'ipv4',
        description: 'address the management node reaches the host at',
      }),
      agentSecret: Type.Optional(
        Type.String({
          minLength: 16,
          maxLength: 512,
          pattern: '^[\\x21-\\x7e]+$',
          description:
            "kvm only, required there: the bearer secret of the host's nimbus-agent (/etc/nimbus-agent/secret); write-only, never returned",
        }),
      ),
      agentPort: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 65535,
          description: `kvm only: the agent's port (default ${DEFAULT_AGENT_PORT})`,
        }),
      ),
      simulatorCpu: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 4096,
          description: 'simulator only: CPUs of the simulated machine (default 32)',
        }),
      ),
      simulatorMemory: Type.Optional(
        Bytes('simulator only: memory of the simulated machine (default 128 GiB)'),
      ),
      ...IPMI_FIELDS,
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      ...IPMI_FIELDS,
      removeIpmi: Type.Optional(Type.Boolean({ description: 'kvm only: forget its IPMI credentials' })),
    },
    strict,
  ),
  actions: {
    ...enableDisable,
    maintain: {
      summary:
        'put it in maintenance: nothing new is placed, its Running VMs live-migrate away (a few at a time), those that cannot move follow `policy`',
      body: Type.Object(
        {
          policy: Type.Optional(
            Type.Enum(MAINTENANCE_POLICIES, {
              description:
                "VMs that cannot move (local storage, router appliances, no other host with room, not Running): 'fail' (default) fails the job naming them, the host stays in Maintenance with the others moved; 'stop' stops them",
            }),
          ),
        },
        strict,
      ),
    },
    reconnect: { summary: 'reconnect to the host and re-read its capacity', body: Empty },
  },
  deletable: true,
  taggable: true,
  columns: [
    'uuid',
    'name',
    'managementIp',
    'state',
    'status',
    'cpuUsed',
    'cpuTotal',
    'memoryUsed',
    'memoryTotal',
  ],
  adminOnly: true,
} satisfies KindContract;

export const accounts: KindContract = {
  kind: 'accounts',
  singular: 'account',
  summary: 'a tenant: owns resources; its users act on its behalf',
  resource: Type.Object({
    uuid: Uuid,
    name: Name,
    type: Type.Enum(['admin', 'normal']),
    description: Nullable(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  }),
  create: Type.Object(
    {
      name: Name,
      password: Type.String({
        minLength: 8,
        maxLength: 256,
        description: 'password of the account’s first user (named like the account)',
      }),
      description: Type.Optional(Description),
    },
    strict,
  ),
  update: Type.Object({ description: Type.Optional(Description) }, strict),
  deletable: true,
  taggable: false,
  columns: ['uuid', 'name', 'type', 'createdAt'],
  adminOnly: true,
};

export const users: KindContract = {
  kind: 'users',
  singular: 'user',
  summary: 'a login of an account',
  resource: Type.Object({
    uuid: Uuid,
    name: Name,
    accountUuid: Uuid,
    description: Nullable(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  }),
  create: Type.Object(
    {
      name: Name,
      password: Type.String({ minLength: 8, maxLength: 256 }),
      accountUuid: Type.Optional(
        Type.String({
          format: 'uuid',
          description: 'admin only: account to add the user to (default: your own)',
        }),
      ),
      description: Type.Optional(Description),
    },
    strict,
  ),
  update: Type.Object(
    {
      description: Type.Optional(Description),
      password: Type.Optional(Type.String({ minLength: 8, maxLength: 256 })),
    },
    strict,
  ),
  deletable: true,
  taggable: false,
  columns: ['uuid', 'name', 'accountUuid', 'createdAt'],
  adminOnly: false,
};

export const jobs: KindContract = {
  kind: 'jobs',
  singular: 'job',
  summary: 'an asynchronous operation and its progress, result or error',
  resource: Job,
  actions: { cancel: { summary: 'cancel a job that has not started yet', body: Empty } },
  deletable: false,
  taggable: false,
  columns: ['uuid', 'kind', 'state', 'progress', 'resourceUuid', 'createdAt'],
  adminOnly: false,
};

export const events: KindContract = {
  kind: 'events',
  singular: 'event',
  summary: 'the audit trail: every state change of every resource and job',
  // biome-ignore lint/suspicious/noExplicitAny: Event is an object schema
  resource: Event as any,
  deletable: false,
  taggable: false,
  columns: ['id', 'at', 'type', 'resourceKind', 'resourceUuid'],
  adminOnly: false,
};

export const tags: KindContract = {
  kind: 'tags',
  singular: 'tag',
  summary: 'user tags on resources (set them with `nimbus <kind> tag`)',
  // biome-ignore lint/suspicious/noExplicitAny: Tag is an object schema
  resource: Tag as any,
  deletable: false,
  taggable: false,
  columns: ['resourceKind', 'resourceUuid', 'key', 'value'],
  adminOnly: false,
};
