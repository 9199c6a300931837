/**
 * How an operation on something attached to a VM (a volume, a NIC) holds the VM, the way every
 * VM operation does (kernel/vm-states.ts): admitted by one conditional UPDATE in the submitting
 * transaction — `state in allowed and task is null` → `task = op` — and released (`task = null
 * where task = op`) when the chain ends or rolls back. So an attach never overlaps a stop, a
 * migration or another attach; a second request is refused at once naming the VM's state or task.
 */
import type { Selectable } from 'kysely';
import type { VmTable } from '../../../db/schema.js';
import type { Executor, Tx } from '../../../db/transaction.js';
import { type CloudError, notFound } from '../../../kernel/errors.js';

export type VmRow = Selectable<VmTable>;
type Seen = { uuid: string; state: string; task: string | null };

/** Takes the VM for `op` inside the admitting transaction, or throws `refusal` of what it saw. */
export async function holdVm(
  tx: Tx,
  vmUuid: string,
  op: string,
  from: readonly string[],
  refusal: (vm: Seen) => CloudError,
): Promise<VmRow> {
  for (let attempt = 0; ; attempt++) {
    const row = await tx
      .updateTable('vms')
      .set({ task: op, updatedAt: new Date() })
      .where('uuid', '=', vmUuid)
      .where('state', 'in', [...from])
      .where('task', 'is', null)
      .returningAll()
      .executeTakeFirst();
    if (row) return row;
    const now = await tx
      .selectFrom('vms')
      .select(['uuid', 'state', 'task'])
      .where('uuid', '=', vmUuid)
      .executeTakeFirst();
    if (!now) throw notFound('vm', vmUuid);
    // released between the UPDATE and the read: the refusal would name an allowed state; try again
    const allowed = now.task === null && from.includes(now.state);
    if (!allowed || attempt >= 2) throw refusal(now);
  }
}

/** Ends the hold (idempotent: only a VM still held for `op` is touched). */
export async function releaseVmHold(exec: Executor, vmUuid: string, op: string): Promise<void> {
  await exec
    .updateTable('vms')
    .set({ task: null, updatedAt: new Date() })
    .where('uuid', '=', vmUuid)
    .where('task', '=', op)
    .execute();
}
