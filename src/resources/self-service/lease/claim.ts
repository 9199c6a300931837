/**
 * Handing one Ready VM of a pool to a holder whose lease waited for it (allocate.ts `serve`, the
 * `wait` policy's path; a request served at once takes hand-out.ts's single statement instead),
 * inside the caller's transaction: the oldest Ready
 * row not locked by a concurrent hand-out (`FOR UPDATE SKIP LOCKED`: callers take different VMs
 * and never queue behind each other), the VM row locked so no operation starts on it meanwhile,
 * and the VM with its volumes and NICs moved to the holder's account. The holder's quota is NOT
 * charged here: the caller charges `usage` (the account's quota rows are shared by all its
 * admissions: a hand-out charges them at its COMMIT, identity/quota/at-commit.ts), and a refusal
 * there rolls everything back. A Ready VM found not running is set aside (Discarding) and
 * the next one tried.
 */
import { sql } from 'kysely';
import type { Tx } from '../../../db/transaction.js';
import { vmQuota } from '../../compute/vm/model.js';
import type { QuotaUsage } from '../../identity/quota/quota.js';

export interface Holder {
  uuid: string;
  isAdmin: boolean;
}

const TRIES = 3;

export async function claimReadyVm(
  tx: Tx,
  poolUuid: string,
  holder: Holder,
): Promise<{ uuid: string; name: string; ips: string[]; usage: QuotaUsage } | undefined> {
  for (let i = 0; i < TRIES; i++) {
    const { rows } = await sql<{ vmUuid: string }>`
      select vm_uuid from pool_vms where pool_uuid = ${poolUuid} and state = 'Ready'
      order by ready_at limit 1 for update skip locked`.execute(tx);
    const candidate = rows[0];
    if (!candidate) return undefined;
    const vm = await tx
      .selectFrom('vms')
      .select(['uuid', 'name', 'state', 'task', 'cpu', 'memory', 'rootVolumeUuid'])
      .where('uuid', '=', candidate.vmUuid)
      .forUpdate()
      .executeTakeFirst();
    if (vm?.state !== 'Running' || vm.task !== null) {
      await tx
        .updateTable('poolVms')
        .set({ state: 'Discarding' })
        .where('vmUuid', '=', candidate.vmUuid)
        .execute();
      continue;
    }
    const root = vm.rootVolumeUuid
      ? await tx.selectFrom('volumes').select('size').where('uuid', '=', vm.rootVolumeUuid).executeTakeFirst()
      : undefined;
    const now = new Date();
    await tx.updateTable('poolVms').set({ state: 'Allocated' }).where('vmUuid', '=', vm.uuid).execute();
    await tx
      .updateTable('vms')
      .set({ accountUuid: holder.uuid, updatedAt: now })
      .where('uuid', '=', vm.uuid)
      .execute();
    await tx
      .updateTable('volumes')
      .set({ accountUuid: holder.uuid, updatedAt: now })
      .where('vmUuid', '=', vm.uuid)
      .execute();
    await tx
      .updateTable('vmNics')
      .set({ accountUuid: holder.uuid, updatedAt: now })
      .where('vmUuid', '=', vm.uuid)
      .execute();
    const nics = await tx
      .selectFrom('vmNics')
      .select('ip')
      .where('vmUuid', '=', vm.uuid)
      .orderBy('deviceId')
      .execute();
    return {
      uuid: vm.uuid,
      name: vm.name,
      ips: nics.flatMap((n) => (n.ip ? [n.ip] : [])),
      usage: { ...vmQuota(vm.cpu, vm.memory), 'volume.capacity': Number(root?.size ?? 0) },
    };
  }
  return undefined;
}
