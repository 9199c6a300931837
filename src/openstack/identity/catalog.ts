/**
 * The Keystone service catalog: one region ("RegionOne"), every service at this node's own URL
 * (urls.ts) on the public, internal and admin interfaces alike (one API serves all three).
 * Ids are stable (the service's type) so a client may cache them.
 */
export const REGION = 'RegionOne';

interface Urls {
  identity: string;
  compute: string;
  image: string;
  network: string;
  volume: string;
}

/**
 * Cinder's v3 endpoint carries the project (`/volume/v3/{project_id}`, the routes' own prefix):
 * a token's catalog names its project, Keystone's endpoint list the template, as Keystone does.
 */
const cinder = (u: Urls, project: string) => `${u.volume}/${project}`;

const SERVICES: { type: string; name: string; url: (u: Urls, project: string) => string }[] = [
  { type: 'identity', name: 'keystone', url: (u) => u.identity },
  { type: 'compute', name: 'nova', url: (u) => u.compute },
  { type: 'image', name: 'glance', url: (u) => u.image },
  { type: 'network', name: 'neutron', url: (u) => u.network },
  { type: 'volumev3', name: 'cinderv3', url: cinder },
  { type: 'block-storage', name: 'cinder', url: cinder },
];

const INTERFACES = ['public', 'internal', 'admin'] as const;

export function catalogFor(urls: Urls, projectId: string): Record<string, unknown>[] {
  return SERVICES.map((s) => ({
    id: s.type,
    type: s.type,
    name: s.name,
    endpoints: INTERFACES.map((i) => ({
      id: `${s.type}-${i}`,
      interface: i,
      region: REGION,
      region_id: REGION,
      url: s.url(urls, projectId),
    })),
  }));
}

/** GET /v3/services and /v3/endpoints: the same catalog, flattened as Keystone lists them */
export function servicesList(): Record<string, unknown>[] {
  return SERVICES.map((s) => ({ id: s.type, type: s.type, name: s.name, enabled: true, description: null }));
}

export function endpointsList(urls: Urls): Record<string, unknown>[] {
  return SERVICES.flatMap((s) =>
    INTERFACES.map((i) => ({
      id: `${s.type}-${i}`,
      interface: i,
      region: REGION,
      region_id: REGION,
      service_id: s.type,
      url: s.url(urls, '%(project_id)s'),
      enabled: true,
    })),
  );
}
