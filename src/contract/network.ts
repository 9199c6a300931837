/**
 * Wire shapes of the networking kinds (see kinds.ts for KindContract; docs/network.md for the
 * model): VXLAN pools, L2 and L3 networks, IP ranges and addresses, VM NICs, security groups and
 * their rules, VIPs, EIPs, port-forwarding rules, virtual-router offerings and routers.
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
  strict,
  Timestamp,
  Uuid,
} from './common.js';
import type { KindContract } from './kinds.js';

const RefUuid = (description: string) => Type.String({ format: 'uuid', description });
const UuidList = (description: string) =>
  Type.Array(Type.String({ format: 'uuid' }), { minItems: 1, maxItems: 100, uniqueItems: true, description });
const IpText = (description: string) => Type.String({ minLength: 2, maxLength: 45, description });
const Port = (description: string) => Type.Integer({ minimum: 1, maximum: 65535, description });

export const L2_TYPES = ['no-vlan', 'vlan', 'vxlan'] as const;
export const L3_CATEGORIES = ['public', 'private', 'system'] as const;
export const NETWORK_PROVIDERS = ['flat', 'virtual-router'] as const;
export const IP_ALLOCATIONS = ['random', 'sequential'] as const;
export const IP_RANGE_TYPES = ['normal', 'reserved'] as const;
export const IP_USES = ['vm-nic', 'vip', 'router', 'dhcp'] as const;
export const SG_DIRECTIONS = ['ingress', 'egress'] as const;
export const SG_PROTOCOLS = ['tcp', 'udp', 'icmp', 'all'] as const;
export const PF_PROTOCOLS = ['tcp', 'udp'] as const;
export const ROUTER_STATES = ['Creating', 'Running', 'Stopped', 'Error', 'Destroying'] as const;
export const ROUTER_STATUSES = ['Connecting', 'Connected', 'Disconnected'] as const;

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
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'zoneUuid', 'vniStart', 'vniEnd'],
  adminOnly: true,
};

export const l2Networks: KindContract = {
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
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
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

export const l3Networks: KindContract = {
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
};

export const ipRanges: KindContract = {
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
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
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

export const securityGroups: KindContract = {
  kind: 'security-groups',
  singular: 'security-group',
  summary: 'a stateful firewall for VM NICs: rules allow traffic; what no rule allows in is dropped',
  resource: Type.Object({ ...base, isDefault: Type.Boolean(), state: EnabledState }),
  create: Type.Object({ name: Name, description: Type.Optional(Description) }, strict),
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
  actions: {
    'add-nics': {
      summary: 'put VM NICs in the group (their hosts get its rules)',
      body: Type.Object({ vmNicUuids: UuidList('the NICs') }, strict),
    },
    'remove-nics': {
      summary: 'take VM NICs out of the group',
      body: Type.Object({ vmNicUuids: UuidList('the NICs') }, strict),
    },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'isDefault', 'state', 'createdAt'],
  adminOnly: false,
};

export const securityGroupRules: KindContract = {
  kind: 'security-group-rules',
  singular: 'security-group-rule',
  summary: 'one allow rule of a security group: direction, protocol, ports, and a remote CIDR or group',
  resource: Type.Object({
    uuid: Uuid,
    securityGroupUuid: Uuid,
    accountUuid: Uuid,
    direction: Type.Enum(SG_DIRECTIONS),
    protocol: Type.Enum(SG_PROTOCOLS),
    portStart: Nullable(Type.Integer()),
    portEnd: Nullable(Type.Integer()),
    remoteCidr: Nullable(Type.String()),
    remoteSecurityGroupUuid: Nullable(Uuid),
    ipVersion: Type.Integer(),
    description: Nullable(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  }),
  create: Type.Object(
    {
      securityGroupUuid: Type.String({
        format: 'uuid',
        description: 'the group',
        'x-cli-ref-alias': 'group',
      }),
      direction: Type.Enum(SG_DIRECTIONS, { description: 'ingress (to the VM) or egress (from it)' }),
      protocol: Type.Enum(SG_PROTOCOLS, { description: 'tcp, udp, icmp or all' }),
      portStart: Type.Optional(Port('first port (tcp/udp; default: all ports)')),
      portEnd: Type.Optional(Port('last port (default: portStart)')),
      remoteCidr: Type.Optional(
        Type.String({ description: 'peer addresses, e.g. 0.0.0.0/0 (default: any)' }),
      ),
      remoteSecurityGroupUuid: Type.Optional(
        RefUuid('peers: the NICs of this group (instead of remoteCidr)'),
      ),
      ipVersion: Type.Optional(
        Type.Union([Type.Literal(4), Type.Literal(6)], { description: '4 (default) or 6' }),
      ),
      description: Type.Optional(Description),
    },
    strict,
  ),
  deletable: true,
  taggable: false,
  columns: ['uuid', 'securityGroupUuid', 'direction', 'protocol', 'portStart', 'portEnd', 'remoteCidr'],
  adminOnly: false,
};

export const vips: KindContract = {
  kind: 'vips',
  singular: 'vip',
  summary: 'a virtual IP on a public L3 network, used by an EIP or by port-forwarding rules',
  resource: Type.Object({
    ...base,
    l3NetworkUuid: Uuid,
    ip: Type.String(),
    usedFor: Nullable(Type.Enum(['eip', 'port-forwarding'])),
    state: EnabledState,
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      l3NetworkUuid: Type.String({
        format: 'uuid',
        description: 'public L3 network to take the address from',
        'x-cli-ref-alias': 'l3',
      }),
      ip: Type.Optional(IpText('a specific address (default: a free one)')),
    },
    strict,
  ),
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'ip', 'usedFor', 'l3NetworkUuid'],
  adminOnly: false,
};

export const eips: KindContract = {
  kind: 'eips',
  singular: 'eip',
  summary: 'a floating IP: a VIP mapped one-to-one onto a VM NIC (SNAT and DNAT by the router)',
  resource: Type.Object({
    ...base,
    vipUuid: Uuid,
    vmNicUuid: Nullable(Uuid),
    ip: Type.String({ description: 'the public address (the VIP’s)' }),
    guestIp: Nullable(Type.String({ description: 'the NIC’s address, when attached' })),
    state: EnabledState,
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      vipUuid: RefUuid('the VIP to use'),
      vmNicUuid: Type.Optional(RefUuid('attach it to this NIC at once')),
    },
    strict,
  ),
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
  actions: {
    attach: {
      summary: 'map it onto a VM NIC of the same account (moving it if attached elsewhere)',
      body: Type.Object({ vmNicUuid: RefUuid('the NIC') }, strict),
    },
    detach: { summary: 'unmap it from its NIC', body: Empty },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'ip', 'guestIp', 'vmNicUuid', 'state'],
  adminOnly: false,
};

export const portForwardingRules: KindContract = {
  kind: 'port-forwarding-rules',
  singular: 'port-forwarding-rule',
  summary: 'forward a port range of a VIP to a port range of a VM NIC',
  resource: Type.Object({
    ...base,
    vipUuid: Uuid,
    protocol: Type.Enum(PF_PROTOCOLS),
    vipPortStart: Type.Integer(),
    vipPortEnd: Type.Integer(),
    privatePortStart: Type.Integer(),
    privatePortEnd: Type.Integer(),
    vmNicUuid: Nullable(Uuid),
    allowedCidr: Nullable(Type.String()),
    state: EnabledState,
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      vipUuid: RefUuid('the VIP'),
      protocol: Type.Enum(PF_PROTOCOLS, { description: 'tcp or udp' }),
      vipPortStart: Port('first port on the VIP'),
      vipPortEnd: Type.Optional(Port('last port on the VIP (default: vipPortStart)')),
      privatePortStart: Type.Optional(Port('first port on the NIC (default: vipPortStart)')),
      privatePortEnd: Type.Optional(Port('last port on the NIC (default: to match the VIP range)')),
      vmNicUuid: Type.Optional(RefUuid('attach it to this NIC at once')),
      allowedCidr: Type.Optional(Type.String({ description: 'only these sources (default: any)' })),
    },
    strict,
  ),
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
  actions: {
    attach: {
      summary: 'forward to this VM NIC',
      body: Type.Object({ vmNicUuid: RefUuid('the NIC') }, strict),
    },
    detach: { summary: 'stop forwarding (the rule stays)', body: Empty },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'protocol', 'vipPortStart', 'vipPortEnd', 'privatePortStart', 'vmNicUuid'],
  adminOnly: false,
};

export const virtualRouterOfferings: KindContract = {
  kind: 'virtual-router-offerings',
  singular: 'virtual-router-offering',
  summary: 'how virtual routers are made: size, appliance image, management and public L3 networks',
  resource: Type.Object({
    ...base,
    zoneUuid: Uuid,
    cpu: Type.Integer(),
    memory: Bytes('memory'),
    imageUuid: Uuid,
    managementL3NetworkUuid: Uuid,
    publicL3NetworkUuid: Uuid,
    isDefault: Type.Boolean(),
    state: EnabledState,
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      zoneUuid: RefUuid('zone'),
      cpu: Type.Integer({ minimum: 1, maximum: 64, description: 'vCPUs of each router' }),
      memory: Type.Integer({
        minimum: 64 * 1024 ** 2,
        description: 'memory of each router',
        'x-unit': 'bytes',
      }),
      imageUuid: RefUuid('the router appliance image'),
      managementL3NetworkUuid: RefUuid('L3 network the management node reaches routers on'),
      publicL3NetworkUuid: RefUuid('public L3 network: SNAT, EIP and port-forwarding addresses'),
      isDefault: Type.Optional(Type.Boolean({ description: 'the zone’s default offering (default false)' })),
    },
    strict,
  ),
  update: Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, strict),
  actions: enableDisable,
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'cpu', 'memory', 'publicL3NetworkUuid', 'isDefault'],
  adminOnly: true,
};

export const virtualRouters: KindContract = {
  kind: 'virtual-routers',
  singular: 'virtual-router',
  summary:
    'the router appliance of a private L3 with the virtual-router provider: DHCP, DNS, SNAT, EIP and port forwarding; made by its first VM',
  resource: Type.Object({
    ...base,
    l3NetworkUuid: Uuid,
    offeringUuid: Uuid,
    vmUuid: Nullable(Uuid),
    publicIp: Nullable(Type.String()),
    guestIp: Nullable(Type.String()),
    managementIp: Nullable(Type.String()),
    state: Type.Enum(ROUTER_STATES),
    status: Type.Enum(ROUTER_STATUSES),
    configVersion: Type.Integer({ description: 'version of the last configuration sent' }),
  }),
  actions: {
    reconnect: { summary: 'reconnect to the router and send its whole configuration again', body: Empty },
    reboot: { summary: 'reboot the router appliance, then send its whole configuration again', body: Empty },
  },
  deletable: true,
  taggable: true,
  columns: ['uuid', 'name', 'l3NetworkUuid', 'state', 'status', 'publicIp', 'guestIp'],
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
