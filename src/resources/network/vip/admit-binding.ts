/**
 * Admitting an EIP or a port-forwarding rule: both take a VIP (under its row lock, for one kind
 * of service), belong to the VIP's account (the admin may make one for a tenant's VIP), may be
 * attached at once to a NIC of that account on a virtual-router L3, and are inserted with their
 * job in one transaction. Each kind adds its own checks and columns in `insert`.
 */
import type { Tx } from '../../../db/transaction.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { Caller } from '../../../kernel/caller.js';
import { newId } from '../../../kernel/ids.js';
import { admitCreate, loadReferenced } from '../../common.js';
import type { ServiceContext } from '../../service.js';
import { type BindingFamily, routedNic, takeVip } from './binding.js';
import { vipSchema } from './service.js';

export type BindingRow = {
  uuid: string;
  name: string;
  description: string | null;
  accountUuid: string;
};

export async function admitBinding(
  ctx: ServiceContext,
  f: BindingFamily,
  usedFor: 'eip' | 'port-forwarding',
  caller: Caller,
  body: Record<string, unknown>,
  insert: (tx: Tx, row: BindingRow, vipUuid: string, nicUuid: string | null) => Promise<void>,
): Promise<JobRow> {
  const mapError = f.mapNicError;
  const vip = await loadReferenced(ctx, vipSchema, body.vipUuid as string, caller, 'vipUuid');
  const nicUuid = (body.vmNicUuid as string | undefined) ?? null;
  if (nicUuid) await routedNic(ctx.db, vip.accountUuid, nicUuid, f.notRoutedCode);
  const row: BindingRow = {
    uuid: newId(),
    name: body.name as string,
    description: (body.description as string | undefined) ?? null,
    accountUuid: vip.accountUuid,
  };
  return admitCreate(
    ctx,
    f,
    caller,
    row,
    { uuid: row.uuid, vmNicUuid: nicUuid },
    {
      skipInsert: true,
      async check(tx) {
        // the VIP's row lock serialises every admission on this VIP
        await takeVip(tx, vip.uuid, usedFor);
        await insert(tx, row, vip.uuid, nicUuid);
      },
      ...(mapError ? { mapError: (err: unknown) => (nicUuid ? mapError(err, nicUuid) : err) } : {}),
    },
  );
}
