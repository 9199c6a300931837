/** What attaching a zone-wide resource (primary storage, an L2 network) to a cluster checks. */
import type { Executor } from '../../../db/transaction.js';
import { invalidField } from '../../../kernel/errors.js';

/**
 * The cluster exists and is in `owner`'s zone (checked at admission and again in the step);
 * `what` names the owner in the message ("primary storage"), `code` the zone mismatch.
 */
export async function assertClusterInZone(
  exec: Executor,
  owner: { uuid: string; zoneUuid: string },
  clusterUuid: string,
  what: string,
  code: string,
): Promise<void> {
  const cluster = await exec
    .selectFrom('clusters')
    .select(['uuid', 'zoneUuid'])
    .where('uuid', '=', clusterUuid)
    .executeTakeFirst();
  if (!cluster) throw invalidField('clusterUuid', `no cluster ${clusterUuid}`, 'CLUSTER_NOT_FOUND');
  if (cluster.zoneUuid !== owner.zoneUuid)
    throw invalidField(
      'clusterUuid',
      `cluster ${clusterUuid} is in zone ${cluster.zoneUuid}; ${what} ${owner.uuid} is in zone ${owner.zoneUuid}`,
      code,
    );
}
