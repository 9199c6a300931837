/**
 * Wire shapes of the networking kinds (see kinds.ts for KindContract; docs/network.md for the
 * model): VXLAN pools, L2 and L3 networks, IP ranges and addresses, VM NICs; the network services'
 * kinds (security groups, VIPs, EIPs, port forwarding, virtual routers) are in network-services.ts,
 * re-exported here.
 */
import { Type } from 'typebox';
import {
  base,
  Description,
  Empty,
  EnabledState,
  enableDisable,
  IpText,
  Name,
  Nullable,
  RefUuid,
  RenameBody,
  strict,
  Timestamp,
  Uuid,
  UuidList,
} from './common.js';
import type { KindContract } from './kind-contract.js';
import {
  eips,
  portForwardingRules,
  securityGroupRules,
  securityGroups,
  vips,
  virtualRouterOfferings,
  virtualRouters,
} from './network-services.js';

export * from './network-services.js';

export const L2_TYPES = ['no-vlan', 'vlan', 'vxlan'] as const;
export const L3_CATEGORIES = ['public', 'private', 'system'] as const;
export const NETWORK_PROVIDERS = ['flat', 'virtual-router'] as const;
export const IP_ALLOCATIONS = ['random', 'sequential'] as const;
export const IP_RANGE_TYPES = ['normal', 'reserved'] as const;
export const IP_USES = ['vm-nic', 'vip', 'router', 'dhcp'] as const;

export const vxlanPools: KindContract = {
  kind: 'vxlan-pools',
  singular: 'vxlan-pool',
  summary: 'a range of VXLAN network identifiers (VNIs) in a zone, from which vxlan L2 networks take theirs',
  resource: Type.Object({ ...base, zoneUuid: Uuid, vniStart: Type.Integer(), vniEnd: Type.Integer() }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      zoneUuid: RefUuid('zone of the pool'),
      vniStart: Type.Integer({ minimum: 1, maximum: 16777214, description: 'first VNI of the range' }),
      vniEnd: Type.Integer({
        minimum: 1,
        maximum: 16777214,
        description: 'last VNI of the range (inclusive)',
      }),
    },
    strict,
  ),
  update: RenameBody,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'zoneUuid', 'vniStart', 'vniEnd'],
  adminOnly: true,
};

export const l2Networks: KindContract = {
  createRules: {
    description:
      'no-vlan: physicalInterface; vlan: physicalInterface and vlan; vxlan: vxlanPoolUuid (vni optional); no field of another type',
    oneOf: [
      {
        properties: { type: { enum: ['no-vlan'] } },
        required: ['physicalInterface'],
        not: { anyOf: [{ required: ['vlan'] }, { required: ['vxlanPoolUuid'] }, { required: ['vni'] }] },
      },
      {
        properties: { type: { enum: ['vlan'] } },
        required: ['physicalInterface', 'vlan'],
        not: { anyOf: [{ required: ['vxlanPoolUuid'] }, { required: ['vni'] }] },
      },
      {
        properties: { type: { enum: ['vxlan'] } },
        required: ['vxlanPoolUuid'],
        not: { required: ['vlan'] },
      },
    ],
  },
  kind: 'l2-networks',
  singular: 'l2-network',
  summary: 'a layer-2 broadcast domain: a physical interface (no-vlan), a VLAN on it, or a VXLAN segment',
  resource: Type.Object({
    ...base,
    zoneUuid: Uuid,
    type: Type.Enum(L2_TYPES),
    physicalInterface: Nullable(Type.String()),
    vlan: Nullable(Type.Integer()),
    vni: Nullable(Type.Integer()),
    vxlanPoolUuid: Nullable(Uuid),
    clusterUuids: Type.Array(Uuid, { description: 'clusters it is attached to' }),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      zoneUuid: RefUuid('zone of the network'),
      type: Type.Enum(L2_TYPES, { description: 'no-vlan, vlan or vxlan' }),
      physicalInterface: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 15,
          pattern: '^[A-Za-z0-9_.:-]+$',
          description: 'host interface, e.g. eth0 (no-vlan, vlan)',
        }),
      ),
      vlan: Type.Optional(Type.Integer({ minimum: 1, maximum: 4094, description: 'VLAN id (vlan)' })),
      vxlanPoolUuid: Type.Optional(RefUuid('pool the VNI comes from (vxlan)')),
      vni: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 16777214,
          description: 'a VNI of the pool (vxlan; default: a free one)',
        }),
      ),
    },
    strict,
  ),
  update: RenameBody,
  actions: {
    'attach-cluster': {
      summary: 'make the network available on the hosts of a cluster',
      body: Type.Object({ clusterUuid: RefUuid('the cluster') }, strict),
    },
    'detach-cluster': {
      summary: 'remove it from a cluster (refused while VMs there use it)',
      body: Type.Object({ clusterUuid: RefUuid('the cluster') }, strict),
    },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'type', 'physicalInterface', 'vlan', 'vni', 'zoneUuid'],
  adminOnly: true,
};

const HostRoute = Type.Object(
  {
    destination: Type.String({ description: 'CIDR, e.g. 10.1.0.0/16' }),
    nexthop: Type.String({ description: 'gateway address' }),
  },
  strict,
);
const DnsList = Type.Array(Type.String({ minLength: 2, maxLength: 45 }), {
  maxItems: 8,
  description: 'DNS server addresses',
});
const Mtu = Type.Integer({ minimum: 68, maximum: 9216, description: 'MTU (default 1500)' });
const DomainName = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^[A-Za-z0-9.-]+$',
  description: 'DNS domain of the VMs',
});

export const l3Networks = {
  createRules: {
    description: 'virtualRouterOfferingUuid only with provider virtual-router',
    anyOf: [
      { not: { required: ['virtualRouterOfferingUuid'] } },
      { required: ['provider'], properties: { provider: { enum: ['virtual-router'] } } },
    ],
  },
  kind: 'l3-networks',
  singular: 'l3-network',
  summary:
    'an IP network on an L2 network: IP ranges, DNS, gateway and network services (flat or virtual router)',
  resource: Type.Object({
    ...base,
    l2NetworkUuid: Uuid,
    zoneUuid: Uuid,
    category: Type.Enum(L3_CATEGORIES),
    ipVersion: Type.Integer(),
    shared: Type.Boolean({ description: 'usable by every account' }),
    dns: Type.Array(Type.String()),
    domainName: Nullable(Type.String()),
    mtu: Type.Integer(),
    hostRoutes: Type.Array(HostRoute),
    provider: Nullable(Type.Enum(NETWORK_PROVIDERS)),
    ipAllocation: Type.Enum(IP_ALLOCATIONS),
    virtualRouterOfferingUuid: Nullable(Uuid),
    state: EnabledState,
    ipTotal: Type.Integer({ description: 'addresses in its ranges (less reserved ones and gateways)' }),
    ipUsed: Type.Integer({ description: 'addresses allocated' }),
    ipFree: Type.Integer({ description: 'addresses still free' }),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      l2NetworkUuid: RefUuid('the L2 network it runs on'),
      category: Type.Enum(L3_CATEGORIES, {
        description: 'public (floating IPs, router uplinks), private (tenant) or system',
      }),
      ipVersion: Type.Optional(
        Type.Union([Type.Literal(4), Type.Literal(6)], { description: '4 (default) or 6' }),
      ),
      shared: Type.Optional(
        Type.Boolean({ description: 'admin only: usable by every account (default false)' }),
      ),
      dns: Type.Optional(DnsList),
      domainName: Type.Optional(DomainName),
      mtu: Type.Optional(Mtu),
      hostRoutes: Type.Optional(Type.Array(HostRoute, { maxItems: 32 })),
      provider: Type.Optional(
        Type.Enum(NETWORK_PROVIDERS, {
          description:
            'network services: flat (DHCP/DNS on every host) or virtual-router (DHCP, DNS, SNAT, EIP, port forwarding)',
        }),
      ),
      ipAllocation: Type.Optional(
        Type.Enum(IP_ALLOCATIONS, { description: 'how free addresses are picked (default random)' }),
      ),
      virtualRouterOfferingUuid: Type.Optional(
        RefUuid('virtual-router provider: the offering of its router (default: the zone’s default offering)'),
      ),
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      dns: Type.Optional(DnsList),
      domainName: Type.Optional(Nullable(DomainName)),
      mtu: Type.Optional(Mtu),
      hostRoutes: Type.Optional(Type.Array(HostRoute, { maxItems: 32 })),
      ipAllocation: Type.Optional(Type.Enum(IP_ALLOCATIONS)),
    },
    strict,
  ),
  actions: enableDisable,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'category', 'provider', 'ipFree', 'ipTotal', 'l2NetworkUuid'],
  adminOnly: false,
} satisfies KindContract;

export const ipRanges: KindContract = {
  createRules: {
    description: 'cidr, or startIp and endIp (not both)',
    oneOf: [
      { required: ['cidr'], not: { anyOf: [{ required: ['startIp'] }, { required: ['endIp'] }] } },
      { required: ['startIp', 'endIp'], not: { required: ['cidr'] } },
    ],
  },
  kind: 'ip-ranges',
  singular: 'ip-range',
  summary: 'addresses of an L3 network that IPAM hands out (normal) or never hands out (reserved)',
  resource: Type.Object({
    ...base,
    l3NetworkUuid: Uuid,
    type: Type.Enum(IP_RANGE_TYPES),
    ipVersion: Type.Integer(),
    startIp: Type.String(),
    endIp: Type.String(),
    gateway: Nullable(Type.String()),
    prefixLength: Type.Integer(),
    netmask: Nullable(Type.String()),
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      l3NetworkUuid: RefUuid('the L3 network'),
      type: Type.Optional(Type.Enum(IP_RANGE_TYPES, { description: 'normal (default) or reserved' })),
      cidr: Type.Optional(
        Type.String({ description: 'the whole subnet, e.g. 10.0.0.0/24 (or give startIp and endIp)' }),
      ),
      startIp: Type.Optional(IpText('first address of the range')),
      endIp: Type.Optional(IpText('last address of the range')),
      gateway: Type.Optional(IpText('gateway (default with cidr: the first address)')),
      netmask: Type.Optional(IpText('IPv4 netmask, e.g. 255.255.255.0 (or prefixLength)')),
      prefixLength: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 128, description: 'subnet prefix length' }),
      ),
    },
    strict,
  ),
  update: RenameBody,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'type', 'startIp', 'endIp', 'gateway', 'prefixLength'],
  adminOnly: false,
};

export const ipAddresses: KindContract = {
  kind: 'ip-addresses',
  singular: 'ip-address',
  summary: 'an allocated address: which L3, range and holder (a VM NIC, a VIP, a router)',
  resource: Type.Object({
    uuid: Uuid,
    l3NetworkUuid: Uuid,
    ipRangeUuid: Nullable(Uuid),
    ip: Type.String(),
    ipVersion: Type.Integer(),
    usedFor: Type.Enum(IP_USES),
    ownerUuid: Nullable(Uuid),
    vmUuid: Nullable(Uuid),
    accountUuid: Uuid,
    createdAt: Timestamp,
  }),
  deletable: false,
  taggable: false,
  columns: ['ip', 'l3NetworkUuid', 'usedFor', 'ownerUuid', 'vmUuid'],
  adminOnly: false,
};

export const vmNics: KindContract = {
  kind: 'vm-nics',
  singular: 'vm-nic',
  summary: 'a VM’s network interface on an L3 network: MAC, IP, security groups',
  resource: Type.Object({
    uuid: Uuid,
    vmUuid: Uuid,
    l3NetworkUuid: Uuid,
    l2NetworkUuid: Uuid,
    accountUuid: Uuid,
    mac: Type.String(),
    ip: Nullable(Type.String()),
    deviceId: Type.Integer({ description: 'position on the VM: 0 = eth0' }),
    isDefault: Type.Boolean({ description: 'its L3 gives the VM its default route' }),
    hostUuid: Nullable(Type.String({ format: 'uuid', description: 'host whose network carries it' })),
    securityGroupUuids: Type.Array(Uuid),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  }),
  create: Type.Object(
    {
      vmUuid: RefUuid('the VM (Running or Stopped) to attach an L3 network to'),
      l3NetworkUuid: Type.String({ format: 'uuid', description: 'the L3 network', 'x-cli-ref-alias': 'l3' }),
      ip: Type.Optional(IpText('a static address (default: one from IPAM)')),
      securityGroupUuids: Type.Optional(UuidList('security groups of the NIC')),
    },
    strict,
  ),
  actions: {
    'change-ip': {
      summary: 'give the NIC another address of its L3 (a given one, or a free one)',
      body: Type.Object({ ip: Type.Optional(IpText('the new address (default: a free one)')) }, strict),
    },
    'set-default': { summary: 'make its L3 the VM’s default route', body: Empty },
  },
  deletable: true,
  taggable: false,
  columns: ['uuid', 'vmUuid', 'ip', 'mac', 'l3NetworkUuid', 'deviceId', 'isDefault'],
  adminOnly: false,
};

export const NETWORK_KINDS: KindContract[] = [
  vxlanPools,
  l2Networks,
  l3Networks,
  ipRanges,
  ipAddresses,
  vmNics,
  securityGroups,
  securityGroupRules,
  vips,
  eips,
  portForwardingRules,
  virtualRouterOfferings,
  virtualRouters,
];
