/**
 * The domain of every API kind, as the source tree groups them (docs/layout.md): the OpenAPI
 * document tags each operation with its domain, so a generated client or a reader finds VMs
 * beside hosts and offerings, not in a flat list of 35 tags. A kind missing here is a test failure
 * (openapi.test.ts), not a silent "other".
 */
export const DOMAINS = {
  compute: {
    description: 'zones, clusters, hosts, offerings, affinity groups, VMs and their NICs',
    kinds: ['zones', 'clusters', 'hosts', 'instance-offerings', 'affinity-groups', 'vms', 'vm-nics'],
  },
  storage: {
    description: 'primary and backup storage, images, disk offerings, volumes and snapshots',
    kinds: ['primary-storages', 'backup-storages', 'images', 'disk-offerings', 'volumes', 'volume-snapshots'],
  },
  network: {
    description:
      'L2/L3 networks, IP ranges and addresses, security groups, VIPs, EIPs, port forwarding, virtual routers',
    kinds: [
      'vxlan-pools',
      'l2-networks',
      'l3-networks',
      'ip-ranges',
      'ip-addresses',
      'security-groups',
      'security-group-rules',
      'vips',
      'eips',
      'port-forwarding-rules',
      'virtual-router-offerings',
      'virtual-routers',
    ],
  },
  identity: {
    description: 'accounts, users, sessions (log in and out) and quotas',
    kinds: ['accounts', 'users', 'quotas', 'auth'],
  },
  operations: {
    description:
      'jobs, events (and their stream), webhooks and their deliveries, tags, the management nodes, health and readiness',
    kinds: ['jobs', 'events', 'webhooks', 'webhook-deliveries', 'tags', 'management-nodes', 'health'],
  },
  'self-service': {
    description: 'VM pools and the leases of the VMs they hand out',
    kinds: ['pools', 'leases'],
  },
  simulator: {
    description: 'the built-in host simulator: power, faults, network commands (tests and demos)',
    kinds: ['simulator'],
  },
} as const satisfies Record<string, { description: string; kinds: readonly string[] }>;

export type Domain = keyof typeof DOMAINS;

const BY_KIND = new Map<string, Domain>(
  Object.entries(DOMAINS).flatMap(([domain, d]) => d.kinds.map((k) => [k, domain as Domain] as const)),
);

/** the domain of a kind or route group (`vms`, `auth`, `simulator`); undefined when unmapped */
export function domainOf(group: string): Domain | undefined {
  return BY_KIND.get(group);
}
