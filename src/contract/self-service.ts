/**
 * Wire shapes of the self-service kinds (docs/self-service.md): pools of warm VMs a developer
 * takes one from at once, and the leases that say for how long they hold it. Durations are
 * seconds; the CLI accepts 90s, 30m, 12h, 7d.
 */
import { type TSchema, Type } from 'typebox';
import {
  base,
  Description,
  Empty,
  EnabledState,
  enableDisable,
  Name,
  Nullable,
  RefUuid,
  strict,
  Timestamp,
  Uuid,
  UuidList,
} from './common.js';
import type { KindContract } from './kind-contract.js';
import { leaseHealth, poolSizingSettings, poolSizingState } from './pool-sizing.js';

const YEAR = 366 * 24 * 3600;
/** a duration in seconds (the CLI takes 7d, 12h, 30m, 90s) */
const Seconds = (description: string, minimum = 60) =>
  Type.Integer({ minimum, maximum: 10 * YEAR, description, 'x-unit': 'seconds' });
const Count = (description: string, minimum: number, maximum: number) =>
  Type.Integer({ minimum, maximum, description });

const LoginUser = Type.String({
  minLength: 1,
  maxLength: 32,
  pattern: '^[a-z_][a-z0-9_-]*$',
  description: 'the guest user a hand-out’s login is made for (default dev)',
});

export const POOL_EMPTY_POLICIES = ['fail', 'wait'] as const;
const EmptyPolicy = Type.Enum(POOL_EMPTY_POLICIES, {
  description: 'when no VM is ready: fail at once (POOL_EMPTY), or wait up to waitSeconds for the next',
});
export const LEASE_IMPORTANCE = ['normal', 'high'] as const;
const Importance = Type.Enum(LEASE_IMPORTANCE, {
  description: 'high: at expiry the VM is stopped first and deleted only after the grace period',
});

const optional = <T extends Record<string, TSchema>>(o: T) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Type.Optional(v)])) as {
    [K in keyof T]: ReturnType<typeof Type.Optional<T[K]>>;
  };

const poolSettings = {
  warmTarget: Count('VMs kept created, booted and ready to hand out', 0, 1000),
  cap: Count('VMs the pool may hold in all, handed out or not', 1, 10000),
  defaultLeaseSeconds: Seconds('lease when the caller names none'),
  maxLeaseSeconds: Seconds('longest lease a caller may ask for, and the most a renewal reaches'),
  maxRenewals: Count('renewals a lease may have', 0, 1000),
  perUserLimit: Count('VMs of this pool one user may hold at once', 1, 1000),
  shared: Type.Boolean({ description: 'every account sees the pool and may take VMs from it' }),
  emptyPolicy: EmptyPolicy,
  waitSeconds: Count('how long an allocation waits for a VM under the wait policy', 1, 120),
};

export const pools = {
  kind: 'pools',
  singular: 'pool',
  summary: 'a self-service pool: warm VMs of one purpose, handed out at once on a lease',
  resource: Type.Object({
    ...base,
    state: EnabledState,
    imageUuid: Uuid,
    instanceOfferingUuid: Uuid,
    l3NetworkUuids: Type.Array(Uuid),
    securityGroupUuids: Type.Array(Uuid),
    userData: Nullable(Type.String({ description: 'bootstrap script the pool VMs run' })),
    floatingL3NetworkUuid: Nullable(Uuid),
    loginUser: Type.String(),
    ...poolSettings,
    ready: Type.Integer({ description: 'VMs ready to hand out' }),
    provisioning: Type.Integer({ description: 'VMs being made' }),
    allocated: Type.Integer({ description: 'VMs handed out' }),
    ...poolSizingState,
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      imageUuid: RefUuid('image of the pool VMs'),
      instanceOfferingUuid: RefUuid('instance offering of the pool VMs'),
      l3NetworkUuids: UuidList('L3 networks of the pool VMs (the first is the default)'),
      securityGroupUuids: Type.Optional(UuidList('security groups of the pool VMs')),
      userData: Type.Optional(Type.String({ maxLength: 65536, description: 'bootstrap script' })),
      floatingL3NetworkUuid: Type.Optional(
        RefUuid(
          'public L3 network: each handed-out VM gets a floating IP (EIP) from it, released when its lease ends',
        ),
      ),
      loginUser: Type.Optional(LoginUser),
      warmTarget: poolSettings.warmTarget,
      cap: poolSettings.cap,
      defaultLeaseSeconds: Type.Optional(Seconds('lease when the caller names none (default 7d)')),
      maxLeaseSeconds: Type.Optional(Seconds('longest lease (default 30d)')),
      maxRenewals: Type.Optional(Count('renewals a lease may have (default 3)', 0, 1000)),
      perUserLimit: Type.Optional(Count('VMs one user may hold at once (default 3)', 1, 1000)),
      shared: Type.Optional(Type.Boolean({ description: 'every account may use it (default false)' })),
      emptyPolicy: Type.Optional(EmptyPolicy),
      waitSeconds: Type.Optional(Count('wait policy: seconds to wait (default 30)', 1, 120)),
      ...optional(poolSizingSettings),
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      warmTarget: Type.Optional(poolSettings.warmTarget),
      cap: Type.Optional(poolSettings.cap),
      defaultLeaseSeconds: Type.Optional(poolSettings.defaultLeaseSeconds),
      maxLeaseSeconds: Type.Optional(poolSettings.maxLeaseSeconds),
      maxRenewals: Type.Optional(poolSettings.maxRenewals),
      perUserLimit: Type.Optional(poolSettings.perUserLimit),
      shared: Type.Optional(poolSettings.shared),
      emptyPolicy: Type.Optional(EmptyPolicy),
      waitSeconds: Type.Optional(poolSettings.waitSeconds),
      ...optional(poolSizingSettings),
    },
    strict,
  ),
  actions: {
    ...enableDisable,
    allocate: {
      summary: 'take a ready VM from the pool on a lease (any account the pool is shared with)',
      tenant: true,
      body: Type.Object(
        {
          leaseSeconds: Type.Optional(Seconds('how long to hold it (default: the pool’s default lease)')),
          importance: Type.Optional(Importance),
          description: Type.Optional(Description),
          sshKey: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 16384,
              description: 'your SSH public key (one OpenSSH line): the VM’s login user accepts it',
              'x-cli-file': true,
            }),
          ),
          password: Type.Optional(
            Type.Boolean({
              description:
                'generate a login password: shown once in this answer (secrets.password), never stored',
            }),
          ),
        },
        strict,
      ),
    },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'state', 'ready', 'provisioning', 'allocated', 'warmTarget', 'cap'],
  adminOnly: true,
} satisfies KindContract;

export const LEASE_STATES = ['Pending', 'Active', 'Stopped', 'Ended'] as const;

export const leases = {
  kind: 'leases',
  singular: 'lease',
  summary: 'who holds a pool VM, until when; renew it or release it',
  resource: Type.Object({
    ...base,
    poolUuid: Uuid,
    vmUuid: Nullable(Uuid),
    ips: Type.Array(Type.String(), { description: 'the VM’s addresses' }),
    userUuid: Uuid,
    importance: Importance,
    state: Type.Enum(LEASE_STATES, {
      description:
        'Pending: waiting for a VM; Active; Stopped: expired, VM stopped, deleted after the grace period unless renewed; Ended',
    }),
    expiresAt: Timestamp,
    deleteAfter: Nullable(Timestamp),
    renewals: Type.Integer({ description: 'renewals so far' }),
    endedAt: Nullable(Timestamp),
    endReason: Nullable(Type.String({ description: 'released, expired, vm-gone or allocation-failed' })),
    floatingIp: Nullable(
      Type.String({ description: 'the floating IP made for the lease (released when it ends)' }),
    ),
    loginMethod: Nullable(Type.Enum(['ssh-key', 'password'])),
    loginUser: Nullable(Type.String()),
    loginState: Nullable(
      Type.Enum(['Delivering', 'Delivered', 'Failed'], {
        description: 'Delivering: the VM restarts with the login; Delivered: the guest has it',
      }),
    ),
    health: leaseHealth,
  }),
  actions: {
    renew: {
      summary: 'extend the lease (a stopped VM starts again)',
      body: Type.Object(
        { leaseSeconds: Type.Optional(Seconds('new length from now (default: the pool’s default lease)')) },
        strict,
      ),
    },
    release: { summary: 'give the VM back: it is destroyed and the pool makes a fresh one', body: Empty },
  },
  deletable: false,
  taggable: false,
  columns: ['uuid', 'name', 'state', 'ips', 'importance', 'expiresAt', 'renewals'],
  adminOnly: false,
} satisfies KindContract;

export const SELF_SERVICE_KINDS: KindContract[] = [pools, leases];
