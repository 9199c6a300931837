/**
 * Cinder volume types, quota sets and limits.
 * - Volume types are the primary storages: a Cinder type chooses where a volume lives (its
 *   backend), which in Nimbus is the primary storage; `extra_specs.volume_backend_name` is the
 *   storage's type (local, nfs, shared-mount, ceph). They are made by the admin natively.
 * - Quotas are the account's Nimbus quotas: volumes = `volume.data.num` (data volumes; root
 *   disks count against the VM), gigabytes = `volume.capacity`, snapshots = `snapshot.num`.
 *   The admin account has none (-1, unlimited). Backups and groups are not served (0).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, forbidden, notFound } from '../../kernel/errors.js';
import { QUOTA_DEFAULTS } from '../../resources/identity/quota/quota.js';
import type { OpenStackDeps } from '../deps.js';
import { boolParam, serviceOf, settle } from '../network/facade.js';
import { assertProject, projectUuid } from '../network/project.js';
import { GiB } from './present.js';

const QUOTAS = {
  volumes: { name: 'volume.data.num', unit: 1 },
  gigabytes: { name: 'volume.capacity', unit: GiB },
  snapshots: { name: 'snapshot.num', unit: 1 },
} as const;
type CinderQuota = keyof typeof QUOTAS;

const QuotaUpdate = Type.Object(
  {
    quota_set: Type.Object(
      {
        volumes: Type.Optional(Type.Integer({ minimum: 0 })),
        gigabytes: Type.Optional(Type.Integer({ minimum: 0 })),
        snapshots: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: false, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);

async function quotaOf(deps: OpenStackDeps, accountUuid: string) {
  const account = await deps.db
    .selectFrom('accounts')
    .select(['uuid', 'type'])
    .where('uuid', '=', accountUuid)
    .executeTakeFirst();
  if (!account) throw notFound('project', accountUuid);
  const rows = await deps.db
    .selectFrom('quotas')
    .select(['name', 'limitValue', 'used'])
    .where('accountUuid', '=', accountUuid)
    .execute();
  const out = {} as Record<CinderQuota, { limit: number; in_use: number }>;
  for (const [key, q] of Object.entries(QUOTAS) as [CinderQuota, (typeof QUOTAS)[CinderQuota]][]) {
    const row = rows.find((r) => r.name === q.name);
    const limit =
      account.type === 'admin' ? -1 : Math.floor(Number(row?.limitValue ?? QUOTA_DEFAULTS[q.name]) / q.unit);
    out[key] = { limit, in_use: Math.ceil(Number(row?.used ?? 0) / q.unit) };
  }
  return out;
}

function typeOf(s: { uuid: string; name: string; type: string; description: string | null }) {
  return {
    id: s.uuid,
    name: s.name,
    description: s.description ?? null,
    is_public: true,
    'os-volume-type-access:is_public': true,
    extra_specs: { volume_backend_name: s.type },
    qos_specs_id: null,
  };
}

/** the quota set's project: the caller's own, or any for the admin */
function target(request: FastifyRequest, caller: Caller): string {
  const { target_project } = request.params as { target_project: string };
  assertProject(caller, target_project);
  return projectUuid(target_project);
}

export function registerLimits(scope: FastifyInstance, deps: OpenStackDeps): void {
  const storages = () =>
    deps.db
      .selectFrom('primaryStorages')
      .select(['uuid', 'name', 'type', 'description'])
      .orderBy('uuid')
      .execute();
  scope.get('/v3/:project_id/types', async () => ({ volume_types: (await storages()).map(typeOf) }));
  scope.get('/v3/:project_id/types/:id', async (request) => {
    const { id } = request.params as { id: string };
    const s = (await storages()).find((x) => x.uuid === id || x.name === id);
    if (!s) throw notFound('volume-type', id);
    return { volume_type: typeOf(s) };
  });
  scope.post('/v3/:project_id/types', async (request) => {
    if (!callerOf(request).isAdmin) throw forbidden('only the admin manages volume types');
    throw new CloudError(
      'Invalid',
      'VOLUME_TYPE_IS_STORAGE',
      'volume types are primary storages: add one through the native API (POST /v1/primary-storages)',
    );
  });

  const quotaSet = async (request: FastifyRequest, defaults: boolean) => {
    const caller = callerOf(request);
    const account = target(request, caller);
    const q = await quotaOf(deps, account);
    const usage = boolParam(request.query as Record<string, unknown>, 'usage') === true;
    const value = (k: CinderQuota) =>
      defaults
        ? Math.floor(QUOTA_DEFAULTS[QUOTAS[k].name] / QUOTAS[k].unit)
        : usage
          ? { limit: q[k].limit, in_use: q[k].in_use, reserved: 0, allocated: 0 }
          : q[k].limit;
    const zero = usage && !defaults ? { limit: 0, in_use: 0, reserved: 0, allocated: 0 } : 0;
    return {
      quota_set: {
        id: account,
        volumes: value('volumes'),
        gigabytes: value('gigabytes'),
        snapshots: value('snapshots'),
        per_volume_gigabytes: usage && !defaults ? { limit: -1, in_use: 0, reserved: 0, allocated: 0 } : -1,
        backups: zero,
        backup_gigabytes: zero,
        groups: zero,
      },
    };
  };
  scope.get('/v3/:project_id/os-quota-sets/:target_project', async (request) => quotaSet(request, false));
  scope.get('/v3/:project_id/os-quota-sets/:target_project/defaults', async (request) =>
    quotaSet(request, true),
  );
  scope.put(
    '/v3/:project_id/os-quota-sets/:target_project',
    { schema: { body: QuotaUpdate } },
    async (request) => {
      const caller = callerOf(request);
      if (!caller.isAdmin) throw forbidden('only the admin changes quotas');
      const account = target(request, caller);
      const body = (request.body as Static<typeof QuotaUpdate>).quota_set;
      const limits = Object.fromEntries(
        (Object.keys(body) as CinderQuota[]).map((k) => [
          QUOTAS[k].name,
          (body[k] as number) * QUOTAS[k].unit,
        ]),
      );
      await settle(deps, await serviceOf(deps, 'quotas').update!(caller, account, limits));
      return quotaSet(request, false);
    },
  );

  scope.get('/v3/:project_id/limits', async (request) => {
    const caller = callerOf(request);
    const { project_id } = request.params as { project_id: string };
    assertProject(caller, project_id);
    const q = await quotaOf(deps, projectUuid(project_id));
    return {
      limits: {
        rate: [],
        absolute: {
          maxTotalVolumes: q.volumes.limit,
          maxTotalVolumeGigabytes: q.gigabytes.limit,
          maxTotalSnapshots: q.snapshots.limit,
          maxTotalBackups: 0,
          maxTotalBackupGigabytes: 0,
          totalVolumesUsed: q.volumes.in_use,
          totalGigabytesUsed: q.gigabytes.in_use,
          totalSnapshotsUsed: q.snapshots.in_use,
          totalBackupsUsed: 0,
          totalBackupGigabytesUsed: 0,
        },
      },
    };
  });
}
