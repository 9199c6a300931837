/**
 * Wire shapes of the network services' kinds (see kinds.ts for KindContract; docs/network.md):
 * security groups and their rules, VIPs, EIPs, port-forwarding rules, virtual-router offerings
 * and routers. The networks themselves (L2, L3, ranges, addresses, NICs) are in network.ts.
 */
import { Type } from 'typebox';
import {
  Bytes,
  base,
  Description,
  Empty,
  EnabledState,
  enableDisable,
  IpText,
  Name,
  Nullable,
  Port,
  RefUuid,
  RenameBody,
  strict,
  Timestamp,
  Uuid,
  UuidList,
} from './common.js';
import type { KindContract } from './kind-contract.js';

export const SG_DIRECTIONS = ['ingress', 'egress'] as const;
export const SG_PROTOCOLS = ['tcp', 'udp', 'icmp', 'all'] as const;
export const PF_PROTOCOLS = ['tcp', 'udp'] as const;
export const ROUTER_STATES = ['Creating', 'Running', 'Stopped', 'Error', 'Destroying'] as const;
export const ROUTER_STATUSES = ['Connecting', 'Connected', 'Disconnected'] as const;

export const securityGroups: KindContract = {
  kind: 'security-groups',
  singular: 'security-group',
  summary: 'a stateful firewall for VM NICs: rules allow traffic; what no rule allows in is dropped',
  resource: Type.Object({ ...base, isDefault: Type.Boolean(), state: EnabledState }),
  create: Type.Object({ name: Name, description: Type.Optional(Description) }, strict),
  update: RenameBody,
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
  update: RenameBody,
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
  update: RenameBody,
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
      allowedCidr: Type.Optional(
        Type.String({
          minLength: 1,
          description: 'only these sources, a CIDR such as 203.0.113.0/24 (default: any)',
        }),
      ),
    },
    strict,
  ),
  update: RenameBody,
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
      memory: Bytes('memory of each router', 64 * 1024 ** 2),
      imageUuid: RefUuid('the router appliance image'),
      managementL3NetworkUuid: RefUuid('L3 network the management node reaches routers on'),
      publicL3NetworkUuid: RefUuid('public L3 network: SNAT, EIP and port-forwarding addresses'),
      isDefault: Type.Optional(Type.Boolean({ description: 'the zone’s default offering (default false)' })),
    },
    strict,
  ),
  update: RenameBody,
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
