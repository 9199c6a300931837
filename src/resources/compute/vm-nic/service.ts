/**
 * VM NICs as an API kind (docs/network.md "VM NICs"): create = attach an L3 to a Running or
 * Stopped VM, delete = detach, change-ip, set-default. Every refusal a request can be given at
 * once is given at admission (all bad fields together); the VM is held in the same transaction
 * that submits the job (claim.ts) and the chain runs in the VM's queue (flows.ts).
 */
import { vmNics as contract } from '../../../contract/network.js';
import type { Tx } from '../../../db/transaction.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, type FieldProblem, invalid, missingReference } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { parseIp } from '../../../kernel/ip.js';
import { loadVisible } from '../../common.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { claimVm, type NicOp } from './claim.js';
import { attachFlow, changeIpFlow, detachFlow, setDefaultFlow } from './flows.js';
import { GroupsOfNics, presentNic, vmNicFamily, vmNicSchema } from './model.js';
import { l3Refusal, loadL3s, plugOf } from './resolve.js';

interface NicRow {
  uuid: string;
  vmUuid: string;
  accountUuid: string;
  l3NetworkUuid: string;
  ip: string | null;
  isDefault: boolean;
}

export class VmNicService implements KindService {
  readonly contract = contract;
  readonly schema = vmNicSchema;
  readonly actions: Record<string, Operation>;
  private readonly groups: GroupsOfNics;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register(attachFlow);
    ctx.engine.register(detachFlow);
    ctx.engine.register(changeIpFlow);
    ctx.engine.register(setDefaultFlow);
    this.groups = new GroupsOfNics(ctx.db);
    this.actions = {
      'change-ip': (caller, uuid, body) => this.changeIp(caller, uuid, body.ip as string | undefined),
      'set-default': (caller, uuid) => this.setDefault(caller, uuid),
    };
  }

  readonly present = (row: Record<string, unknown>) => presentNic(this.groups, row);

  async create(caller: Caller, body: Record<string, unknown>): Promise<JobRow> {
    const b = body as { vmUuid: string; l3NetworkUuid: string; ip?: string; securityGroupUuids?: string[] };
    const db = this.ctx.db;
    let vmQuery = db.selectFrom('vms').selectAll().where('uuid', '=', b.vmUuid);
    if (!caller.isAdmin) vmQuery = vmQuery.where('accountUuid', '=', caller.accountUuid);
    const groups = b.securityGroupUuids ?? [];
    const [vm, [l3], owned, onIt] = await Promise.all([
      vmQuery.executeTakeFirst(),
      loadL3s(db, [b.l3NetworkUuid]),
      groups.length === 0
        ? Promise.resolve([])
        : db
            .selectFrom('securityGroups')
            .select(['uuid', 'accountUuid'])
            .where('uuid', 'in', groups)
            .execute(),
      db
        .selectFrom('vmNics')
        .select('uuid')
        .where('vmUuid', '=', b.vmUuid)
        .where('l3NetworkUuid', '=', b.l3NetworkUuid)
        .executeTakeFirst(),
    ]);
    if (!vm) throw missingReference('vmUuid', 'vm', b.vmUuid);
    const problems: FieldProblem[] = [];
    const bad = (field: string, problem: string) => problems.push({ field, problem });
    const refused = l3Refusal(caller, b.l3NetworkUuid, l3);
    if (refused) bad('l3NetworkUuid', refused);
    else if (onIt)
      bad('l3NetworkUuid', `vm ${vm.uuid} already has NIC ${onIt.uuid} on l3 network ${b.l3NetworkUuid}`);
    if (b.ip !== undefined) {
      const parsed = parseIp(b.ip);
      if (!parsed) bad('ip', `${b.ip} is not an IP address`);
      else if (l3 && parsed.version !== l3.ipVersion)
        bad('ip', `${b.ip} is IPv${parsed.version}; l3 network ${l3.name} is IPv${l3.ipVersion}`);
    }
    for (const [i, g] of groups.entries())
      if (!owned.some((o) => o.uuid === g && o.accountUuid === vm.accountUuid))
        bad(`securityGroupUuids[${i}]`, `no security group ${g} of the vm's account`);
    if (problems.length > 0 || !l3) throw invalid(problems);
    if (vm.clusterUuid) {
      const attached = await db
        .selectFrom('l2NetworkClusters')
        .select('clusterUuid')
        .where('l2NetworkUuid', '=', l3.l2NetworkUuid)
        .where('clusterUuid', '=', vm.clusterUuid)
        .executeTakeFirst();
      if (!attached)
        throw new CloudError(
          'Conflict',
          'L2_NETWORK_NOT_IN_CLUSTER',
          `l3 network ${l3.name} is on l2 network ${l3.l2NetworkUuid}, which is not attached to cluster ${vm.clusterUuid} of vm ${vm.uuid}`,
          { details: { l2NetworkUuid: l3.l2NetworkUuid, clusterUuid: vm.clusterUuid } },
        );
    }
    const uuid = newId();
    return this.submit(
      caller,
      { uuid, vmUuid: vm.uuid, accountUuid: vm.accountUuid },
      'vm-nic.create',
      'attach-nic',
      {
        nic: {
          uuid,
          l3NetworkUuid: l3.uuid,
          l2NetworkUuid: l3.l2NetworkUuid,
          ip: b.ip ?? null,
          allowGateway: false,
          ...plugOf(l3),
        },
        securityGroupUuids: groups,
      },
    );
  }

  /** DELETE detaches the NIC (its address is released). */
  async remove(caller: Caller, uuid: string): Promise<JobRow> {
    const nic = await this.load(caller, uuid);
    return this.submit(caller, nic, 'vm-nic.delete', 'detach-nic', {});
  }

  private async changeIp(caller: Caller, uuid: string, ip: string | undefined): Promise<JobRow> {
    await this.load(caller, uuid);
    // the address row is internal (not a queryable field): read it here
    const nic = await this.ctx.db
      .selectFrom('vmNics')
      .select(['uuid', 'vmUuid', 'accountUuid', 'ip', 'ipAddressUuid'])
      .where('uuid', '=', uuid)
      .executeTakeFirstOrThrow();
    if (ip !== undefined) {
      const parsed = parseIp(ip);
      if (!parsed) throw invalid([{ field: 'ip', problem: `${ip} is not an IP address` }]);
      if (parsed.value === parseIp(nic.ip ?? '')?.value)
        throw invalid([{ field: 'ip', problem: `the NIC has ${ip} already` }]);
    }
    return this.submit(caller, nic, 'vm-nic.change-ip', 'change-nic-ip', {
      ip: ip ?? null,
      newAddressUuid: newId(),
      oldIp: nic.ip,
      oldAddressUuid: nic.ipAddressUuid,
    });
  }

  private async setDefault(caller: Caller, uuid: string): Promise<JobRow> {
    const nic = await this.load(caller, uuid);
    const current = await this.ctx.db
      .selectFrom('vmNics')
      .select('uuid')
      .where('vmUuid', '=', nic.vmUuid)
      .where('isDefault', '=', true)
      .executeTakeFirst();
    return this.submit(caller, nic, 'vm-nic.set-default', 'set-default-nic', {
      previousDefault: current?.uuid ?? null,
    });
  }

  private async load(caller: Caller, uuid: string): Promise<NicRow> {
    return (await loadVisible(this.ctx, vmNicSchema, uuid, caller)) as unknown as NicRow;
  }

  /** The job in the VM's queue, submitted in the transaction that holds the VM for `op`. */
  private submit(
    caller: Caller,
    nic: { uuid: string; vmUuid: string; accountUuid: string },
    kind: string,
    op: NicOp,
    params: Record<string, unknown>,
  ): Promise<JobRow> {
    return this.ctx.engine.submitAndStart(
      {
        kind,
        params: { uuid: nic.uuid, vmUuid: nic.vmUuid, ...params },
        accountUuid: nic.accountUuid,
        userUuid: caller.userUuid,
        resourceKind: vmNicFamily.kind,
        resourceUuid: nic.uuid,
        queueKey: `vm:${nic.vmUuid}`,
        requestId: caller.requestId,
        done: ['claim-vm'],
      },
      async (tx: Tx) => {
        await claimVm(tx, nic.vmUuid, op);
      },
    );
  }
}
