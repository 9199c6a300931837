/**
 * Row types of the networking tables (migrations 0006–0008), in camelCase; part of `Database`
 * in schema.ts, which re-exports them.
 */
import type { ColumnType } from 'kysely';
import type { JsonWithDefault, Resource, Timestamp, WithDefault } from './columns.js';

export interface VxlanPoolTable extends Resource {
  zoneUuid: string;
  vniStart: number;
  vniEnd: number;
}

export type L2Type = 'no-vlan' | 'vlan' | 'vxlan';

export interface L2NetworkTable extends Resource {
  zoneUuid: string;
  type: L2Type;
  physicalInterface: string | null;
  vlan: number | null;
  vni: number | null;
  vxlanPoolUuid: string | null;
}

export interface L2NetworkClusterTable {
  l2NetworkUuid: string;
  clusterUuid: string;
  createdAt: Timestamp;
}

export type L3Category = 'public' | 'private' | 'system';
export type NetworkProvider = 'flat' | 'virtual-router';

export interface HostRoute {
  destination: string;
  nexthop: string;
}

export interface L3NetworkTable extends Resource {
  l2NetworkUuid: string;
  zoneUuid: string;
  category: L3Category;
  ipVersion: WithDefault<number>;
  shared: WithDefault<boolean>;
  dns: JsonWithDefault<string[]>;
  domainName: string | null;
  mtu: WithDefault<number>;
  hostRoutes: JsonWithDefault<HostRoute[]>;
  provider: NetworkProvider | null;
  ipAllocation: WithDefault<'random' | 'sequential'>;
  virtualRouterOfferingUuid: string | null;
  state: WithDefault<string>;
}

/** L3s with their address counts (migration 0007), as the API shows them */
export interface L3NetworkWithCapacityView extends L3NetworkTable {
  ipTotal: number;
  ipUsed: number;
  ipFree: number;
}

/** L2s with the clusters they are attached to (migration 0007) */
export interface L2NetworkWithClustersView extends L2NetworkTable {
  clusterUuids: string[];
}

/**
 * numeric(39,0) columns: pg returns numeric as a JS number by default (pool.ts), which loses
 * IPv6 precision, so IP numbers are always selected as text (`ip_number::text`) or compared in
 * SQL; on insert a decimal string is given.
 */
type IpNumber = ColumnType<string, string, string>;

export interface IpRangeTable extends Resource {
  l3NetworkUuid: string;
  type: WithDefault<'normal' | 'reserved'>;
  ipVersion: number;
  startIp: string;
  endIp: string;
  firstNumber: IpNumber;
  lastNumber: IpNumber;
  gateway: string | null;
  /** the gateway as a number (migration 0007), for the capacity view */
  gatewayNumber: ColumnType<string | null, string | null | undefined, string | null>;
  prefixLength: number;
  netmask: string | null;
}

export type IpUse = 'vm-nic' | 'vip' | 'router' | 'dhcp';

export interface IpAddressTable {
  uuid: string;
  l3NetworkUuid: string;
  ipRangeUuid: string | null;
  ip: string;
  ipNumber: IpNumber;
  ipVersion: number;
  accountUuid: string;
  usedFor: IpUse;
  ownerUuid: string | null;
  vmUuid: string | null;
  createdAt: Timestamp;
}

export interface VmNicTable {
  uuid: string;
  vmUuid: string;
  l3NetworkUuid: string;
  l2NetworkUuid: string;
  accountUuid: string;
  mac: string;
  ip: string | null;
  ipAddressUuid: string | null;
  deviceId: number;
  isDefault: WithDefault<boolean>;
  /** the host whose network configuration must carry this NIC (its VM's host while placed) */
  hostUuid: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface SecurityGroupTable extends Resource {
  isDefault: WithDefault<boolean>;
  state: WithDefault<string>;
}

export interface SecurityGroupRuleTable {
  uuid: string;
  securityGroupUuid: string;
  accountUuid: string;
  direction: 'ingress' | 'egress';
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  portStart: number | null;
  portEnd: number | null;
  remoteCidr: string | null;
  remoteSecurityGroupUuid: string | null;
  ipVersion: WithDefault<number>;
  description: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface VmNicSecurityGroupTable {
  vmNicUuid: string;
  securityGroupUuid: string;
  createdAt: Timestamp;
}

export interface VipTable extends Resource {
  l3NetworkUuid: string;
  ip: string;
  ipAddressUuid: string | null;
  usedFor: 'eip' | 'port-forwarding' | null;
  state: WithDefault<string>;
}

export interface EipTable extends Resource {
  vipUuid: string;
  vmNicUuid: string | null;
  state: WithDefault<string>;
}

/** EIPs with the VIP's address and the NIC's (migration 0008), as the API shows them */
export interface EipWithAddressesView extends EipTable {
  ip: string;
  guestIp: string | null;
}

export interface PortForwardingRuleTable extends Resource {
  vipUuid: string;
  protocol: 'tcp' | 'udp';
  vipPortStart: number;
  vipPortEnd: number;
  privatePortStart: number;
  privatePortEnd: number;
  vmNicUuid: string | null;
  allowedCidr: string | null;
  state: WithDefault<string>;
}

export interface VirtualRouterOfferingTable extends Resource {
  zoneUuid: string;
  cpu: number;
  memory: number;
  imageUuid: string;
  managementL3NetworkUuid: string;
  publicL3NetworkUuid: string;
  isDefault: WithDefault<boolean>;
  state: WithDefault<string>;
}

export interface VirtualRouterTable extends Resource {
  l3NetworkUuid: string;
  offeringUuid: string;
  vmUuid: string | null;
  publicIp: string | null;
  guestIp: string | null;
  managementIp: string | null;
  state: WithDefault<string>;
  status: WithDefault<string>;
  jobUuid: string | null;
  /** the VM job that made the row (before its appliance job exists) or claimed its appliance's start */
  claimJobUuid: string | null;
  configVersion: WithDefault<number>;
}
