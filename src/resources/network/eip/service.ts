/**
 * EIPs (floating IPs): a VIP mapped one-to-one onto a VM NIC of the same account on a
 * virtual-router L3; the router does the DNAT/SNAT (docs/network.md "VIPs, EIPs, port
 * forwarding"). One EIP per VIP (`eips_vip_key`, and the VIP's `used_for` taken under its row
 * lock, so an EIP and port forwarding never share a VIP) and one per NIC (`eips_nic_key` →
 * EIP_NIC_TAKEN). Attach moves an attached EIP; detach unmaps; delete unmaps, then frees the VIP.
 * The API shows the VIP's address (`ip`) and the NIC's (`guestIp`): rows are read from the view
 * `eips_with_addresses`.
 */
import { eips as contract } from '../../../contract/network.js';
import { isUniqueViolation } from '../../../db/errors.js';
import type { Executor } from '../../../db/transaction.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError } from '../../../kernel/errors.js';
import { changeFlow, loadVisible, submitFor } from '../../common.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { admitBinding } from '../vip/admit-binding.js';
import { type BindingFamily, bindingFlows, routedNic } from '../vip/binding.js';

const NOT_ROUTED = 'EIP_NIC_NOT_ROUTED';

export const eipSchema: KindSchema = {
  kind: 'eips',
  table: 'eipsWithAddresses',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    vipUuid: 'uuid',
    vmNicUuid: 'uuid',
    ip: 'string',
    guestIp: 'string',
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    vip: { kind: 'vips', local: 'vipUuid', remote: 'uuid' },
    vmNic: { kind: 'vm-nics', local: 'vmNicUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

function nicTaken(err: unknown, nicUuid: string): unknown {
  if (isUniqueViolation(err, 'eips_nic_key'))
    return new CloudError('Conflict', 'EIP_NIC_TAKEN', `NIC ${nicUuid} already has an EIP`, {
      details: { vmNicUuid: nicUuid },
    });
  if (isUniqueViolation(err, 'eips_vip_key'))
    return new CloudError('Conflict', 'VIP_IN_USE', 'the vip already has an EIP');
  return err;
}

export const eipFamily: BindingFamily = {
  singular: 'eip',
  kind: 'eips',
  table: 'eips',
  notRoutedCode: NOT_ROUTED,
  mapNicError: nicTaken,
  result: (db: Executor, uuid: string) =>
    db.selectFrom('eipsWithAddresses').selectAll().where('uuid', '=', uuid).executeTakeFirst(),
};

export function eipService(ctx: ServiceContext): KindService {
  for (const flow of bindingFlows(eipFamily)) ctx.engine.register(flow);
  ctx.engine.register({
    ...changeFlow(eipFamily, 'eip.update', 'updated'),
    result: (c) => eipFamily.result(c.db, c.params.uuid),
  });
  const load = (caller: Caller, uuid: string) => loadVisible(ctx, eipSchema, uuid, caller);
  const submit = (
    caller: Caller,
    row: { uuid: string; accountUuid: string },
    kind: string,
    nic: string | null,
  ) => submitFor(ctx, eipFamily, caller, row, kind, { vmNicUuid: nic });

  const update: Operation = async (caller, uuid, body) =>
    submitFor(ctx, eipFamily, caller, await load(caller, uuid), 'eip.update', { changes: body });

  return {
    contract,
    schema: eipSchema,
    update,
    create: (caller, body) =>
      admitBinding(ctx, eipFamily, 'eip', caller, body, async (tx, row, vipUuid, vmNicUuid) => {
        await tx
          .insertInto('eips')
          .values({ ...row, vipUuid, vmNicUuid })
          .execute();
      }),
    async remove(caller, uuid) {
      return submit(caller, await load(caller, uuid), 'eip.delete', null);
    },
    actions: {
      attach: async (caller, uuid, body) => {
        const eip = await load(caller, uuid);
        const nicUuid = body.vmNicUuid as string;
        await routedNic(ctx.db, eip.accountUuid, nicUuid, NOT_ROUTED);
        const holder = await ctx.db
          .selectFrom('eips')
          .select('uuid')
          .where('vmNicUuid', '=', nicUuid)
          .where('uuid', '<>', uuid)
          .executeTakeFirst();
        if (holder) throw nicTaken({ code: '23505', constraint: 'eips_nic_key' }, nicUuid);
        return submit(caller, eip, 'eip.attach', nicUuid);
      },
      detach: async (caller, uuid) => submit(caller, await load(caller, uuid), 'eip.detach', null),
    },
  };
}
