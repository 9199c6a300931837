/** Builders for scheduler tests: a healthy default host/storage/request, overridden per test. */
import { DEFAULT_CONFIG, GiB, resolveConfig } from './config.js';
import { createContext, type PlacementContext } from './context.js';
import type {
  HostCandidate,
  PlacementRequest,
  SchedulerConfig,
  SchedulerConfigInput,
  StorageCandidate,
} from './types.js';

export function storage(over: Partial<StorageCandidate> = {}): StorageCandidate {
  return {
    uuid: 'ps-1',
    type: 'nfs',
    state: 'Enabled',
    status: 'Connected',
    capacityTotal: 1000 * GiB,
    capacityUsed: 0,
    overProvisioningRatio: 1,
    hasImageCached: false,
    ...over,
  };
}

/** 32 CPUs, 128 GiB, nothing used, one empty 1000 GiB NFS storage, network l2-a attached. */
export function host(uuid: string, over: Partial<HostCandidate> = {}): HostCandidate {
  return {
    uuid,
    name: `name-${uuid}`,
    zoneUuid: 'z1',
    clusterUuid: 'c1',
    hypervisorType: 'kvm',
    state: 'Enabled',
    status: 'Connected',
    cluster: { state: 'Enabled', zoneState: 'Enabled' },
    cpuTotal: 32,
    cpuUsed: 0,
    memoryTotal: 128 * GiB,
    memoryUsed: 0,
    vmCount: 0,
    l2NetworkUuids: ['l2-a'],
    primaryStorages: [storage()],
    ...over,
  };
}

/** 2 vCPUs, 4 GiB, a 20 GiB root disk from a 1 GiB kvm qcow2 image. */
export function request(over: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    cpu: 2,
    memory: 4 * GiB,
    rootDiskSize: 20 * GiB,
    image: { uuid: 'img-1', hypervisorType: 'kvm', platform: 'Linux', format: 'qcow2', size: GiB },
    ...over,
  };
}

export function config(over: SchedulerConfigInput = {}): SchedulerConfig {
  return resolveConfig(over);
}

export function ctxOf(
  req: PlacementRequest = request(),
  cfg: SchedulerConfig = DEFAULT_CONFIG,
): PlacementContext {
  return createContext(req, cfg);
}
