/**
 * Port-forwarding rules: a VIP port range (tcp|udp) forwarded by the router to a port range of
 * the same length on a VM NIC of the same account on a virtual-router L3 (docs/network.md "VIPs,
 * EIPs, port forwarding"). A VIP used by an EIP serves no rule (VIP_IN_USE). Two rules of one VIP
 * whose VIP ranges overlap for the same protocol are refused (PORT_FORWARDING_CONFLICT): the
 * check and the insert run in the admission transaction under the VIP's row lock
 * (`SELECT … FOR UPDATE`), so concurrent creates are serialised on that one row and exactly one
 * of overlapping ones is admitted. The VIP is freed for other uses when its last rule goes.
 */
import { portForwardingRules as contract } from '../../../contract/network.js';
import type { Executor } from '../../../db/transaction.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, type FieldProblem, invalid } from '../../../kernel/errors.js';
import { parseCidr } from '../../../kernel/ip.js';
import { changeFlow, loadVisible, readRow, submitFor } from '../../common.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { admitBinding } from '../vip/admit-binding.js';
import { type BindingFamily, bindingFlows, routedNic } from '../vip/binding.js';

const NOT_ROUTED = 'PORT_FORWARDING_NIC_NOT_ROUTED';

export const pfSchema: KindSchema = {
  kind: 'port-forwarding-rules',
  table: 'portForwardingRules',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    vipUuid: 'uuid',
    protocol: { enum: ['tcp', 'udp'] },
    vipPortStart: 'int',
    vipPortEnd: 'int',
    privatePortStart: 'int',
    privatePortEnd: 'int',
    vmNicUuid: 'uuid',
    allowedCidr: 'string',
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

export const pfFamily: BindingFamily = {
  singular: 'port-forwarding-rule',
  kind: 'port-forwarding-rules',
  table: 'portForwardingRules',
  notRoutedCode: NOT_ROUTED,
  result: (db: Executor, uuid: string) => readRow(db, 'portForwardingRules', uuid),
};

export interface PortRanges {
  protocol: 'tcp' | 'udp';
  vipPortStart: number;
  vipPortEnd: number;
  privatePortStart: number;
  privatePortEnd: number;
  allowedCidr: string | null;
}

/**
 * The rule's ranges with the contract's defaults (vipPortEnd = vipPortStart, privatePortStart =
 * vipPortStart, privatePortEnd = privatePortStart + the VIP range's length), or every problem.
 */
export function portRanges(body: Record<string, unknown>): PortRanges {
  const problems: FieldProblem[] = [];
  const vipPortStart = body.vipPortStart as number;
  const vipPortEnd = (body.vipPortEnd as number | undefined) ?? vipPortStart;
  const privatePortStart = (body.privatePortStart as number | undefined) ?? vipPortStart;
  const span = vipPortEnd - vipPortStart;
  const privatePortEnd = (body.privatePortEnd as number | undefined) ?? privatePortStart + span;
  if (vipPortEnd < vipPortStart)
    problems.push({ field: 'vipPortEnd', problem: `${vipPortEnd} is before vipPortStart ${vipPortStart}` });
  if (privatePortEnd < privatePortStart)
    problems.push({
      field: 'privatePortEnd',
      problem: `${privatePortEnd} is before privatePortStart ${privatePortStart}`,
    });
  else if (privatePortEnd > 65535)
    problems.push({
      field: 'privatePortEnd',
      problem: `the private range would end at ${privatePortEnd} (> 65535)`,
    });
  else if (span >= 0 && privatePortEnd - privatePortStart !== span)
    problems.push({
      field: 'privatePortEnd',
      problem: `the private range has ${privatePortEnd - privatePortStart + 1} ports, the VIP range ${span + 1}; they must be equal`,
    });
  const cidr = body.allowedCidr as string | undefined;
  if (cidr !== undefined && !parseCidr(cidr))
    problems.push({ field: 'allowedCidr', problem: `${cidr} is not a CIDR (e.g. 203.0.113.0/24)` });
  if (problems.length > 0) throw invalid(problems);
  return {
    protocol: body.protocol as 'tcp' | 'udp',
    vipPortStart,
    vipPortEnd,
    privatePortStart,
    privatePortEnd,
    allowedCidr: cidr ?? null,
  };
}

export function pfService(ctx: ServiceContext): KindService {
  for (const flow of bindingFlows(pfFamily)) ctx.engine.register(flow);
  ctx.engine.register(changeFlow(pfFamily, 'port-forwarding-rule.update', 'updated'));
  const load = (caller: Caller, uuid: string) => loadVisible(ctx, pfSchema, uuid, caller);
  const submit = (
    caller: Caller,
    row: { uuid: string; accountUuid: string },
    kind: string,
    nic: string | null,
  ) => submitFor(ctx, pfFamily, caller, row, kind, { vmNicUuid: nic });
  const update: Operation = async (caller, uuid, body) =>
    submitFor(ctx, pfFamily, caller, await load(caller, uuid), 'port-forwarding-rule.update', {
      changes: body,
    });

  return {
    contract,
    schema: pfSchema,
    update,
    async create(caller, body) {
      const ranges = portRanges(body);
      return admitBinding(
        ctx,
        pfFamily,
        'port-forwarding',
        caller,
        body,
        async (tx, row, vipUuid, vmNicUuid) => {
          const clash = await tx
            .selectFrom('portForwardingRules')
            .select(['uuid', 'vipPortStart', 'vipPortEnd'])
            .where('vipUuid', '=', vipUuid)
            .where('protocol', '=', ranges.protocol)
            .where('vipPortStart', '<=', ranges.vipPortEnd)
            .where('vipPortEnd', '>=', ranges.vipPortStart)
            .limit(1)
            .executeTakeFirst();
          if (clash)
            throw new CloudError(
              'Conflict',
              'PORT_FORWARDING_CONFLICT',
              `${ranges.protocol} ports ${ranges.vipPortStart}-${ranges.vipPortEnd} of vip ${vipUuid} overlap rule ${clash.uuid} (${clash.vipPortStart}-${clash.vipPortEnd})`,
              { details: { ruleUuid: clash.uuid } },
            );
          await tx
            .insertInto('portForwardingRules')
            .values({ ...row, ...ranges, vipUuid, vmNicUuid })
            .execute();
        },
      );
    },
    async remove(caller, uuid) {
      return submit(caller, await load(caller, uuid), 'port-forwarding-rule.delete', null);
    },
    actions: {
      attach: async (caller, uuid, body) => {
        const rule = await load(caller, uuid);
        await routedNic(ctx.db, rule.accountUuid, body.vmNicUuid as string, NOT_ROUTED);
        return submit(caller, rule, 'port-forwarding-rule.attach', body.vmNicUuid as string);
      },
      detach: async (caller, uuid) =>
        submit(caller, await load(caller, uuid), 'port-forwarding-rule.detach', null),
    },
  };
}
