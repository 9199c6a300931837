/**
 * Row types of every table, in camelCase (the CamelCasePlugin maps them to snake_case columns).
 * Migrations are the truth for the physical schema; this file mirrors them for the type checker.
 */
import type { Generated } from 'kysely';
import type { Json, JsonWithDefault, Resource, Timestamp, WithDefault } from './columns.js';
import type { VmGuestConfigTable, WebhookDeliveryTable, WebhookTable } from './schema-hooks.js';
import type {
  EipTable,
  EipWithAddressesView,
  IpAddressTable,
  IpRangeTable,
  L2NetworkClusterTable,
  L2NetworkTable,
  L2NetworkWithClustersView,
  L3NetworkTable,
  L3NetworkWithCapacityView,
  PortForwardingRuleTable,
  SecurityGroupRuleTable,
  SecurityGroupTable,
  VipTable,
  VirtualRouterOfferingTable,
  VirtualRouterTable,
  VmNicSecurityGroupTable,
  VmNicTable,
  VxlanPoolTable,
} from './schema-network.js';
import type * as Os from './schema-openstack.js';
import type { PoolMissTable, QuotaChargeTable, VmHealTable } from './schema-pool-health.js';
import type { LeaseTable, PoolTable, PoolVmTable, PoolWithStockView } from './schema-self-service.js';
import type {
  SimulatorBackupStorageImageTable,
  SimulatorBackupStorageTable,
  SimulatorHostTable,
  SimulatorVmTable,
} from './schema-simulator.js';

export type * from './columns.js';
export type * from './schema-hooks.js';
export type * from './schema-network.js';
export type * from './schema-openstack.js';
export type * from './schema-self-service.js';
export type * from './schema-simulator.js';

export interface AccountTable {
  uuid: string;
  name: string;
  type: 'admin' | 'normal';
  description: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface UserTable {
  uuid: string;
  accountUuid: string;
  name: string;
  passwordHash: string;
  description: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface SessionTable {
  uuid: string;
  tokenHash: string;
  userUuid: string;
  accountUuid: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
  revokedAt: Date | null;
}

export interface ManagementNodeTable {
  uuid: string;
  name: string;
  address: string;
  startedAt: Timestamp;
  heartbeatAt: Timestamp;
  stoppedAt: Date | null;
  version: WithDefault<string>;
  drainingAt: Date | null;
  /** the node that declared this one dead and fenced it (cluster/fence.ts) */
  fencedBy: string | null;
}

export type JobState = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelled';

/** Journal of a workflow chain, rewritten after every step (one row per job: no hot row). */
export interface FlowJournal {
  phase: 'forward' | 'rollback';
  /** names of steps whose forward action completed, in order */
  done: string[];
  /** the step whose action (forward or rollback) is in flight, if any */
  current: string | null;
  /** data steps pass to later steps and to their rollbacks */
  ctx: Record<string, unknown>;
  /** first failure, kept while rolling back */
  failure?: unknown;
  rollbackFailures?: unknown[];
  /** steps whose rollback ran (failed or not), in the order they were undone: what a client shows */
  rolledBack?: string[];
}

export interface JobTable {
  uuid: string;
  kind: string;
  state: JobState;
  progress: WithDefault<number>;
  progressMessage: string | null;
  accountUuid: string;
  userUuid: string | null;
  resourceKind: string | null;
  resourceUuid: string | null;
  queueKey: string;
  params: Json<Record<string, unknown>>;
  result: Json<unknown> | null;
  error: Json<unknown> | null;
  flow: Json<FlowJournal> | null;
  ownerNode: string | null;
  /** the slot a Running job holds in its queue (unique per queue: cluster-wide serialization) */
  queueSlot: number | null;
  requestId: string | null;
  createdAt: Timestamp;
  startedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Timestamp;
}

export interface EventTable {
  id: Generated<string>;
  uuid: string;
  at: Timestamp;
  type: string;
  resourceKind: string;
  resourceUuid: string;
  accountUuid: string;
  jobUuid: string | null;
  data: Json<Record<string, unknown>>;
}

export interface TagTable {
  uuid: string;
  resourceKind: string;
  resourceUuid: string;
  accountUuid: string;
  key: string;
  value: string | null;
  createdAt: Timestamp;
}

export interface ZoneTable {
  uuid: string;
  name: string;
  description: string | null;
  state: WithDefault<'Enabled' | 'Disabled'>;
  accountUuid: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface ClusterTable {
  uuid: string;
  name: string;
  description: string | null;
  zoneUuid: string;
  hypervisorType: string;
  state: WithDefault<'Enabled' | 'Disabled'>;
  hostHa: WithDefault<boolean>;
  accountUuid: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export type HostState = 'Enabled' | 'Disabled' | 'PreMaintenance' | 'Maintenance';
export type HostStatus = 'Connecting' | 'Connected' | 'Disconnected';

export interface HostTable {
  uuid: string;
  name: string;
  description: string | null;
  zoneUuid: string;
  clusterUuid: string;
  hypervisorType: string;
  managementIp: string;
  state: WithDefault<HostState>;
  status: WithDefault<HostStatus>;
  cpuTotal: WithDefault<number>;
  cpuUsed: WithDefault<number>;
  memoryTotal: WithDefault<number>;
  memoryUsed: WithDefault<number>;
  vmCount: WithDefault<number>;
  lastSeenAt: Date | null;
  /** kvm: the agent's port (null = DEFAULT_AGENT_PORT) */
  agentPort: WithDefault<number | null>;
  /** kvm: kvm | tcg, as the agent said at its last connect */
  accelerator: WithDefault<string | null>;
  hypervisorVersion: WithDefault<string | null>;
  fencedAt: WithDefault<Date | null>;
  accountUuid: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface InstanceOfferingTable extends Resource {
  cpu: number;
  memory: number;
  allocatorStrategy: string | null;
  state: WithDefault<'Enabled' | 'Disabled'>;
}

export interface DiskOfferingTable extends Resource {
  size: number;
  state: WithDefault<'Enabled' | 'Disabled'>;
}

export interface BackupStorageTable extends Resource {
  type: string;
  url: string;
  capacityTotal: WithDefault<number>;
  capacityUsed: WithDefault<number>;
  state: WithDefault<'Enabled' | 'Disabled'>;
  status: WithDefault<'Connecting' | 'Connected' | 'Disconnected'>;
}

export interface BackupStorageZoneTable {
  backupStorageUuid: string;
  zoneUuid: string;
}

export type ImageState = 'Downloading' | 'Ready' | 'Error' | 'Deleted';

export interface ImageTable extends Resource {
  format: 'qcow2' | 'raw' | 'iso';
  mediaType: 'RootVolumeTemplate' | 'DataVolumeTemplate' | 'ISO';
  platform: string;
  guestOsType: string | null;
  url: string;
  size: WithDefault<number>;
  actualSize: WithDefault<number>;
  minDisk: WithDefault<number>;
  state: ImageState;
  isPublic: WithDefault<boolean>;
  backupStorageUuid: string | null;
  deletedAt: Date | null;
}

export type PrimaryStorageType = 'local' | 'nfs' | 'shared-mount' | 'ceph';

export interface PrimaryStorageTable extends Resource {
  type: PrimaryStorageType;
  url: string;
  zoneUuid: string;
  capacityTotal: WithDefault<number>;
  capacityUsed: WithDefault<number>;
  overProvisioningRatio: WithDefault<number>;
  state: WithDefault<'Enabled' | 'Disabled' | 'Maintenance'>;
  status: WithDefault<'Connecting' | 'Connected' | 'Disconnected'>;
}

export interface PrimaryStorageClusterTable {
  primaryStorageUuid: string;
  clusterUuid: string;
}

export interface PrimaryStorageHostTable {
  primaryStorageUuid: string;
  hostUuid: string;
  capacityTotal: number;
  capacityUsed: WithDefault<number>;
}

export interface ImageCacheTable {
  uuid: string;
  primaryStorageUuid: string;
  hostUuid: string | null;
  imageUuid: string;
  /** bytes reserved on the storage for the copy */
  size: number;
  /** Deleting: being removed (no caller may take it; it disappears) */
  state: 'Downloading' | 'Ready' | 'Deleting';
  /** where the host put the copy (set once Ready) */
  path: string | null;
  /** handed to a caller other than its creator: the creator's rollback keeps it */
  shared: WithDefault<boolean>;
  /** the job copying (Downloading) or removing (Deleting) it: recovery reclaims it once that job is gone */
  jobUuid: string | null;
  createdAt: Timestamp;
}

/** primary_storages with capacity as the API shows it (local: sums over its hosts); a view */
export interface PrimaryStorageWithCapacityView extends Resource {
  type: PrimaryStorageType;
  url: string;
  zoneUuid: string;
  state: 'Enabled' | 'Disabled' | 'Maintenance';
  status: 'Connecting' | 'Connected' | 'Disconnected';
  overProvisioningRatio: number;
  /** as configured: per host for local storage */
  capacity: number;
  capacityTotal: number;
  capacityUsed: number;
  /** capacityTotal × overProvisioningRatio − capacityUsed */
  capacityAvailable: number;
}

/** The simulated backup storages' own world (what the "physical" storage has). */
export interface AffinityGroupTable extends Resource {
  policy: 'affinity' | 'anti-affinity';
  enforcement: 'hard' | 'soft';
}

export interface VmTable extends Resource {
  zoneUuid: string | null;
  clusterUuid: string | null;
  hostUuid: string | null;
  lastHostUuid: string | null;
  instanceOfferingUuid: string | null;
  imageUuid: string | null;
  rootVolumeUuid: string | null;
  cpu: number;
  memory: number;
  platform: string | null;
  state: string;
  task: string | null;
  powerState: WithDefault<string>;
  affinityGroupUuid: string | null;
  placement: JsonWithDefault<Record<string, unknown>>;
  destroyedAt: Date | null;
  /** a live migration's target host, whose capacity the VM holds while it moves (0005) */
  migrationTargetUuid: WithDefault<string | null>;
  haLevel: WithDefault<string>;
  /** the VM has user-data in vm_guest_configs (0024) */
  hasUserData: WithDefault<boolean>;
}

export interface VolumeTable extends Resource {
  type: 'Root' | 'Data';
  vmUuid: string | null;
  deviceId: number | null;
  primaryStorageUuid: string | null;
  hostUuid: string | null;
  diskOfferingUuid: string | null;
  imageUuid: string | null;
  size: number;
  actualSize: WithDefault<number>;
  format: WithDefault<string>;
  state: string;
  deleteWithVm: WithDefault<boolean>;
  deletedAt: Date | null;
  /** where the storage put it (set once created; 0004) */
  path: WithDefault<string | null>;
}

export interface VolumeSnapshotTable extends Resource {
  volumeUuid: string;
  parentUuid: string | null;
  primaryStorageUuid: string | null;
  size: number;
  state: string;
  latest: WithDefault<boolean>;
  /** where the storage put it (0004) */
  path: WithDefault<string | null>;
}

export interface QuotaTable {
  /** 0004: the row's API identity */
  uuid: Generated<string>;
  accountUuid: string;
  name: string;
  limitValue: number;
  used: WithDefault<number>;
  updatedAt: Timestamp;
}

/** `quota_usage` (0004): the quotas as the API shows them, `limit_value` named `limit`. */
export interface QuotaUsageView {
  uuid: string;
  accountUuid: string;
  name: string;
  limit: number;
  used: number;
  updatedAt: Date;
}

export interface Database {
  accounts: AccountTable;
  users: UserTable;
  sessions: SessionTable;
  managementNodes: ManagementNodeTable;
  jobs: JobTable;
  events: EventTable;
  tags: TagTable;
  zones: ZoneTable;
  clusters: ClusterTable;
  hosts: HostTable;
  hostSecrets: { hostUuid: string; secret: string };
  hostFenceCredentials: { hostUuid: string; address: string; username: string; password: string };
  backupStorageSecrets: { backupStorageUuid: string; secret: string };
  /** 0016: secrets every management node shares (the console tokens' HMAC key) */
  installationSecrets: { name: string; secret: string; createdAt: Timestamp };
  /** 0016: nonces of console tokens already used, kept until they expire */
  consoleTokenUses: { nonce: string; expiresAt: Date | string };
  simulatorHosts: SimulatorHostTable;
  instanceOfferings: InstanceOfferingTable;
  diskOfferings: DiskOfferingTable;
  backupStorages: BackupStorageTable;
  backupStorageZones: BackupStorageZoneTable;
  images: ImageTable;
  primaryStorages: PrimaryStorageTable;
  primaryStorageClusters: PrimaryStorageClusterTable;
  primaryStorageHosts: PrimaryStorageHostTable;
  imageCache: ImageCacheTable;
  primaryStoragesWithCapacity: PrimaryStorageWithCapacityView;
  simulatorBackupStorages: SimulatorBackupStorageTable;
  simulatorBackupStorageImages: SimulatorBackupStorageImageTable;
  affinityGroups: AffinityGroupTable;
  vms: VmTable;
  volumes: VolumeTable;
  volumeSnapshots: VolumeSnapshotTable;
  quotas: QuotaTable;
  quotaUsage: QuotaUsageView;
  simulatorVms: SimulatorVmTable;
  webhooks: WebhookTable;
  webhookDeliveries: WebhookDeliveryTable;
  vmGuestConfigs: VmGuestConfigTable;
  vxlanPools: VxlanPoolTable;
  l2Networks: L2NetworkTable;
  l2NetworkClusters: L2NetworkClusterTable;
  l3Networks: L3NetworkTable;
  l3NetworksWithCapacity: L3NetworkWithCapacityView;
  l2NetworksWithClusters: L2NetworkWithClustersView;
  ipRanges: IpRangeTable;
  ipAddresses: IpAddressTable;
  vmNics: VmNicTable;
  securityGroups: SecurityGroupTable;
  securityGroupRules: SecurityGroupRuleTable;
  vmNicSecurityGroups: VmNicSecurityGroupTable;
  vips: VipTable;
  eips: EipTable;
  eipsWithAddresses: EipWithAddressesView;
  portForwardingRules: PortForwardingRuleTable;
  virtualRouterOfferings: VirtualRouterOfferingTable;
  virtualRouters: VirtualRouterTable;
  pools: PoolTable;
  poolsWithStock: PoolWithStockView;
  poolVms: PoolVmTable;
  leases: LeaseTable;
  poolMisses: PoolMissTable;
  vmHeals: VmHealTable;
  quotaCharges: QuotaChargeTable;
  /** 0022: the OpenStack façade's own records (schema-openstack.ts) */
  openstackKeypairs: Os.OpenstackKeypairTable;
  openstackServers: Os.OpenstackServerTable;
  openstackImages: Os.OpenstackImageTable;
  openstackAppCredentials: Os.OpenstackAppCredentialTable;
}
