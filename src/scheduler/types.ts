/**
 * The scheduler's vocabulary: what the caller hands in (a request, candidate hosts, a config) and
 * what comes back. Plain data, read-only to the scheduler: it never copies or mutates a candidate.
 */

export type ImageFormat = 'qcow2' | 'raw' | 'iso';
export type AffinityPolicy = 'affinity' | 'anti-affinity';
export type Enforcement = 'hard' | 'soft';
export type Strategy = 'spread' | 'pack';

export type HostState = 'Enabled' | 'Disabled' | 'PreMaintenance' | 'Maintenance';
export type HostStatus = 'Connecting' | 'Connected' | 'Disconnected';
export type EnabledState = 'Enabled' | 'Disabled';
export type StorageType = 'local' | 'nfs' | 'shared-mount' | 'ceph';
export type StorageState = 'Enabled' | 'Disabled' | 'Maintenance';
export type StorageStatus = 'Connecting' | 'Connected' | 'Disconnected';

export interface PlacementImage {
  uuid: string;
  /** Undefined, '' or 'any' run on every hypervisor; otherwise it must equal the host's exactly. */
  hypervisorType?: string;
  platform: string;
  format: ImageFormat;
  /** Bytes the image takes once cached on a primary storage (its actual, not virtual, size). */
  size: number;
}

export interface PlacementHints {
  zoneUuid?: string;
  clusterUuid?: string;
  hostUuid?: string;
  /** The root volume must go on this storage (and the host must reach it). */
  primaryStorageUuid?: string;
}

export interface AffinityGroup {
  uuid: string;
  name: string;
  policy: AffinityPolicy;
  enforcement: Enforcement;
  /** Hosts running the group's other VMs, one entry per VM (a host may repeat). */
  memberHostUuids: readonly string[];
}

export interface PlacementRequest {
  /** vCPUs. */
  cpu: number;
  /** Bytes. */
  memory: number;
  /** Bytes of the root volume (for an ISO: the blank disk the offering gives; must be > 0). */
  rootDiskSize: number;
  /** Bytes of each data volume created with the VM; they go on the root volume's storage. */
  dataDiskSizes?: readonly number[];
  image: PlacementImage;
  hints?: PlacementHints;
  /** Hosts already tried, or a migration's source host. */
  excludeHosts?: readonly string[];
  affinityGroups?: readonly AffinityGroup[];
  /** Migration: only non-local storage counts, since the disks must stay where they are. */
  requiresSharedStorage?: boolean;
  /** L2 networks the VM's NICs need; the host's cluster must have all of them attached. */
  l2NetworkUuids?: readonly string[];
}

export interface StorageCandidate {
  uuid: string;
  type: StorageType;
  state: StorageState;
  status: StorageStatus;
  /** Bytes; for local storage, this host's share. */
  capacityTotal: number;
  capacityUsed: number;
  /** Thin provisioning: capacity counts as capacityTotal × ratio (1 = none). */
  overProvisioningRatio: number;
  hasImageCached: boolean;
}

export interface HostCandidate {
  uuid: string;
  name: string;
  zoneUuid: string;
  clusterUuid: string;
  hypervisorType: string;
  state: HostState;
  status: HostStatus;
  /** Names are optional and used only to make explanations readable. */
  cluster: { state: EnabledState; zoneState: EnabledState; name?: string; zoneName?: string };
  cpuTotal: number;
  cpuUsed: number;
  /** Bytes. */
  memoryTotal: number;
  memoryUsed: number;
  vmCount: number;
  /** L2 networks attached to the host's cluster. */
  l2NetworkUuids: readonly string[];
  /** Primary storages this host reaches. */
  primaryStorages: readonly StorageCandidate[];
}

export interface WeigherMultipliers {
  memory: number;
  cpu: number;
  vmCount: number;
  softAffinity: number;
  softAntiAffinity: number;
  imageCache: number;
}

export interface SchedulerConfig {
  /** vCPUs a host may promise per physical CPU. */
  cpuOvercommit: number;
  memoryOvercommit: number;
  /** Bytes each host keeps for itself (hypervisor, agent, page cache). */
  reservedMemoryPerHost: number;
  /** 0 = no limit. */
  maxVmsPerHost: number;
  strategy: Strategy;
  weights: WeigherMultipliers;
  /** The first host is drawn at random from this many best ones, so concurrent requests collide less. */
  topN: number;
}

export type SchedulerConfigInput = Partial<Omit<SchedulerConfig, 'weights'>> & {
  weights?: Partial<WeigherMultipliers>;
};

/** Filters in the order they run; a host stops at the first that rejects it. */
export const FILTER_NAMES = [
  'hints',
  'excluded',
  'host-state',
  'cluster-state',
  'image',
  'l2-network',
  'affinity',
  'cpu',
  'memory',
  'max-vms',
  'storage',
] as const;
export type FilterName = (typeof FILTER_NAMES)[number];

export interface RankedHost {
  hostUuid: string;
  /** Where the root (and data) volumes go. */
  primaryStorageUuid: string;
  /** Σ multiplier × normalised metric; higher is better. */
  score: number;
  /** The caller's own candidate object, not a copy. */
  host: HostCandidate;
  storage: StorageCandidate;
}

export interface Rejection {
  hostUuid: string;
  filter: FilterName;
  reason: string;
}

export interface PlacementResult {
  /** Acceptable hosts, best first (the first drawn at random among the top N): try them in order. */
  hosts: RankedHost[];
  /** Hosts each filter rejected (each host counted once, at its first failing filter). */
  rejected: Record<FilterName, number>;
  /** Set exactly when no host is acceptable. */
  explanation?: string;
  /** Every rejected host with its reason; only when asked for (options.trace). */
  rejections?: Rejection[];
}

export interface ScheduleOptions {
  /** Uniform in [0, 1); defaults to Math.random. Inject a seeded one for reproducible runs. */
  random?: () => number;
  /** Also return a per-host reason for every rejection (for logs and "why not this host?"). */
  trace?: boolean;
}
