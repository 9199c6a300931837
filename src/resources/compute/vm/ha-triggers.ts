/**
 * What the reconciler starts when it finds a failure (docs/hosts.md "Host HA"):
 * - a host silent `failuresBeforeDisconnect` times in a cluster with host HA on → the
 *   `host.ha-recover` chain (host/ha-flow.ts: fence, then restart its HA VMs elsewhere), at most
 *   one unfinished per host cluster-wide: the check and the submit share a transaction that
 *   locks the host's row, and the reconciler runs for a host on its owner node only; a host
 *   already fenced gets one again only for HA VMs the last recovery could not take (busy then);
 * - a guest of HA level restart-on-failure or restart-on-host-failure that died on a host that
 *   answers → a `vm.start` on that host, as the system.
 */
import { sql } from 'kysely';
import type { Tx } from '../../../db/transaction.js';
import { CloudError } from '../../../kernel/errors.js';
import type { ServiceContext } from '../../service.js';
import { submitOperation } from './operations.js';

export const HOST_HA_RECOVER = 'host.ha-recover';

export interface HaTriggers {
  /** the host has stayed silent; submits its recovery when host HA applies and none is under way */
  hostSilent(host: { uuid: string }): Promise<void>;
  /** the guest of an idle VM (now Stopped) died on `hostUuid` */
  guestDied(vm: { uuid: string; accountUuid: string; haLevel: string }, hostUuid: string): Promise<void>;
}

/** An idle HA VM still on the fenced host whose volumes are all on shared storage. */
async function leftBehind(tx: Tx, hostUuid: string): Promise<boolean> {
  const { rows } = await sql<{ uuid: string }>`
    select v.uuid from vms v
    where v.host_uuid = ${hostUuid} and v.ha_level = 'restart-on-host-failure' and v.task is null
      and v.state in ('Unknown', 'Running', 'Paused')
      and not exists (
        select 1 from volumes vol join primary_storages p on p.uuid = vol.primary_storage_uuid
        where vol.vm_uuid = v.uuid and vol.state <> 'Deleted' and p.type = 'local')
    limit 1`.execute(tx);
  return rows.length > 0;
}

export function haTriggers(svc: ServiceContext): HaTriggers {
  return {
    async hostSilent(host) {
      let submitted = false;
      const job = await svc.events.inTransaction(svc.db, async (tx, batch) => {
        const row = await tx
          .selectFrom('hosts as h')
          .innerJoin('clusters as c', 'c.uuid', 'h.clusterUuid')
          .select(['h.uuid', 'h.accountUuid', 'h.status', 'h.fencedAt', 'c.hostHa'])
          .where('h.uuid', '=', host.uuid)
          .forUpdate('h')
          .executeTakeFirst();
        if (!row?.hostHa || row.status !== 'Disconnected') return undefined;
        // fenced already: again only for HA VMs left behind (busy with an operation when the
        // recovery listed the host's VMs) that can run elsewhere; the fence is not repeated
        if (row.fencedAt !== null && !(await leftBehind(tx, host.uuid))) return undefined;
        const running = await tx
          .selectFrom('jobs')
          .select('uuid')
          .where('kind', '=', HOST_HA_RECOVER)
          .where('resourceUuid', '=', host.uuid)
          .where('state', 'in', ['Pending', 'Running'])
          .executeTakeFirst();
        if (running) return undefined;
        submitted = true;
        return svc.engine.submit(
          tx,
          {
            kind: HOST_HA_RECOVER,
            params: { uuid: host.uuid },
            accountUuid: row.accountUuid,
            userUuid: null,
            resourceKind: 'hosts',
            resourceUuid: host.uuid,
            queueKey: `host-ha:${host.uuid}`,
            requestId: `host-ha-${host.uuid}`,
          },
          batch,
        );
      });
      if (submitted && job) svc.engine.start(job.uuid, job.queueKey);
    },

    async guestDied(vm, hostUuid) {
      if (vm.haLevel === 'none') return;
      try {
        await submitOperation(
          svc,
          { userUuid: null, requestId: `ha-restart-${vm.uuid}-${Date.now()}` },
          { uuid: vm.uuid, accountUuid: vm.accountUuid, state: 'Stopped', task: null },
          'start',
          { hostUuid },
        );
      } catch (err) {
        // an operation admitted meanwhile (a user's start) wins
        if (err instanceof CloudError && err.reason === 'Conflict') return;
        throw err;
      }
    },
  };
}
