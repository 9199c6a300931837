/**
 * VMs: the family, the query schema, the row and the job parameters every VM chain shares.
 *
 * Capacity rule (docs/compute.md): a VM holds CPU, memory and one VM slot on the host named by
 * `host_uuid` (and, while a live migration runs, also on `migration_target_uuid`) — and on no
 * other. Running, Paused and Unknown VMs hold their host; Stopped and Destroyed VMs hold none
 * (as in ZStack: a stop gives the capacity back, a start takes it again). So for every host,
 * used = Σ over the VMs naming it, which the invariant tests check.
 */
import type { Selectable } from 'kysely';
import type { VmTable } from '../../../db/schema.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import { VM_STATES } from '../../../kernel/vm-states.js';
import type { Family } from '../../common.js';

export const vmFamily: Family = { singular: 'vm', kind: 'vms', table: 'vms' };

export type VmRow = Selectable<VmTable>;

export const vmSchema: KindSchema = {
  kind: 'vms',
  table: 'vms',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    state: { enum: VM_STATES },
    task: 'string',
    powerState: 'string',
    zoneUuid: 'uuid',
    clusterUuid: 'uuid',
    hostUuid: 'uuid',
    lastHostUuid: 'uuid',
    instanceOfferingUuid: 'uuid',
    imageUuid: 'uuid',
    rootVolumeUuid: 'uuid',
    cpu: 'int',
    memory: 'int',
    platform: 'string',
    affinityGroupUuid: 'uuid',
    destroyedAt: 'timestamp',
    haLevel: { enum: ['none', 'restart-on-failure', 'restart-on-host-failure'] },
    hasUserData: 'boolean',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    host: { kind: 'hosts', local: 'hostUuid', remote: 'uuid' },
    cluster: { kind: 'clusters', local: 'clusterUuid', remote: 'uuid' },
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    instanceOffering: { kind: 'instance-offerings', local: 'instanceOfferingUuid', remote: 'uuid' },
    affinityGroup: { kind: 'affinity-groups', local: 'affinityGroupUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

/** A data volume made with the VM. */
export interface DataDisk {
  volumeUuid: string;
  size: number;
  diskOfferingUuid: string | null;
}

/** The image facts a create needs, read once at admission. */
export interface ImageFacts {
  uuid: string;
  url: string;
  size: number;
  actualSize: number;
  format: 'qcow2' | 'raw' | 'iso';
  platform: string;
}

export interface PlacementHintsParam {
  zoneUuid?: string;
  clusterUuid?: string;
  hostUuid?: string;
  primaryStorageUuid?: string;
}

/**
 * A NIC the create chain makes (docs/network.md "VM NICs"): resolved at admission, its uuid
 * chosen there; its address comes from IPAM in `allocate-nics` (`ip`: a static one asked for).
 */
export interface NicParam {
  uuid: string;
  l3NetworkUuid: string;
  l2NetworkUuid: string;
  deviceId: number;
  isDefault: boolean;
  ip: string | null;
  /** a router's guest NIC takes the gateway address */
  allowGateway: boolean;
  provider: 'flat' | 'virtual-router' | null;
  /** as the hypervisor plugs it (NicSpec) */
  bridgeName: string;
  mtu: number;
}

/** What `vm.create` runs with: everything validated and resolved at admission. */
export interface VmCreateParams {
  name: string;
  cpu: number;
  memory: number;
  image: ImageFacts;
  rootVolumeUuid: string;
  rootDiskSize: number;
  dataDisks: DataDisk[];
  deleteDataDisksWithVm: boolean;
  hints: PlacementHintsParam;
  affinityGroupUuid: string | null;
  strategy: 'start' | 'create-stopped';
  allocatorStrategy: 'spread' | 'pack' | null;
  /** its NICs, in device order (absent in jobs admitted before networking: none) */
  nics?: NicParam[];
  /** groups every NIC joins */
  securityGroupUuids?: string[];
  /** the virtual router this VM is the appliance of (it needs no router itself) */
  applianceOf?: string | null;
}

/** Every other VM chain: the VM, and the state it was in when the operation was admitted. */
export interface VmOpParams {
  uuid: string;
  fromState: string;
}

/** Resource usage a VM counts against its account's quota (volumes: those made with it). */
export function vmQuota(cpu: number, memory: number) {
  return { 'vm.num': 1, 'vm.cpu': cpu, 'vm.memory': memory } as const;
}

/** The API shape of a VM row: internal placement bookkeeping stays inside. */
export function presentVm(row: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!row) return row;
  const { placement: _p, migrationTargetUuid: _m, ...vm } = row;
  return vm;
}
