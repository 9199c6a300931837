/** Hosts: hypervisor machines in a cluster. Admin-only. Adding one runs the host.create chain. */
import { hosts as contract } from '../../../contract/foundation.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, type FieldProblem, invalid } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { admitCreate, loadVisible, queueKey, submitFor } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, type StandardOperations, standardOperations } from '../../standard.js';
import { hostFamily as family, hostCreateFlow, hostReconnectFlow } from './flows.js';
import { hostHaRecoverFlow } from './ha-flow.js';
import { hostMaintainFlow } from './maintenance.js';

export const hostSchema: KindSchema = {
  kind: 'hosts',
  table: 'hosts',
  visibility: 'admin',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    zoneUuid: 'uuid',
    clusterUuid: 'uuid',
    hypervisorType: 'string',
    managementIp: 'string',
    state: { enum: ['Enabled', 'Disabled', 'PreMaintenance', 'Maintenance'] },
    status: { enum: ['Connecting', 'Connected', 'Disconnected'] },
    cpuTotal: 'int',
    cpuUsed: 'int',
    memoryTotal: 'int',
    memoryUsed: 'int',
    agentPort: 'int',
    accelerator: 'string',
    hypervisorVersion: 'string',
    fencedAt: 'timestamp',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    cluster: { kind: 'clusters', local: 'clusterUuid', remote: 'uuid' },
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

const IPMI_FIELDS = ['ipmiAddress', 'ipmiUsername', 'ipmiPassword'] as const;

/** What a hypervisor type requires of a host create body and what it refuses. */
function hypervisorProblems(type: string, body: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const only = (field: string, forType: string) => {
    if (body[field] !== undefined && type !== forType)
      problems.push({ field, problem: `only for ${forType} clusters; this cluster is ${type}` });
  };
  only('simulatorCpu', 'simulator');
  only('simulatorMemory', 'simulator');
  only('agentSecret', 'kvm');
  only('agentPort', 'kvm');
  const ipmi = IPMI_FIELDS.filter((f) => body[f] !== undefined);
  for (const f of ipmi) only(f, 'kvm');
  if (type === 'kvm' && ipmi.length > 0)
    for (const f of IPMI_FIELDS)
      if (body[f] === undefined)
        problems.push({
          field: f,
          problem: `required with ${ipmi.join(', ')}: IPMI fencing needs the BMC address, user and password`,
        });
  if (type === 'kvm' && body.agentSecret === undefined)
    problems.push({
      field: 'agentSecret',
      problem:
        'required for a kvm host: the secret its nimbus-agent was installed with (/etc/nimbus-agent/secret)',
    });
  return problems;
}

const addressTaken = (err: unknown) =>
  mapUnique(err, 'HOST_ADDRESS_IN_USE', 'another host already has this management IP');

export class HostService implements KindService {
  readonly contract = contract;
  readonly schema = hostSchema;

  readonly update: StandardOperations['update'];
  readonly remove: StandardOperations['remove'];
  readonly actions: StandardOperations['actions'];

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register(hostCreateFlow);
    ctx.engine.register(hostReconnectFlow);
    ctx.engine.register(hostMaintainFlow(ctx));
    ctx.engine.register(hostHaRecoverFlow(ctx));
    const ops = standardOperations(ctx, {
      family,
      schema: hostSchema,
      states: { ...ENABLE_DISABLE },
      blockers: [
        {
          table: 'vms',
          column: 'hostUuid',
          what: 'vms',
          remedy: 'stop and migrate, or destroy and expunge them first',
        },
        {
          table: 'volumes',
          column: 'hostUuid',
          what: 'volumes',
          remedy: 'expunge the volumes on its local storage first',
        },
      ],
      beforeRemove: (host) => {
        if (host.status === 'Connecting') {
          throw new CloudError(
            'Conflict',
            'HOST_BUSY',
            `host ${host.uuid} is Connecting; wait for its job to finish, then delete it`,
            {
              details: { status: host.status },
            },
          );
        }
      },
    });
    this.update = (caller, uuid, body) => this.updateHost(caller, uuid, body);
    this.remove = ops.remove;
    this.actions = {
      ...ops.actions,
      maintain: (caller, uuid, body) => this.maintain(caller, uuid, body),
      reconnect: async (caller, uuid) =>
        submitFor(ctx, family, caller, await loadVisible(ctx, hostSchema, uuid, caller), 'host.reconnect'),
    };
  }

  /**
   * PATCH: name and description through the standard `host.update` chain; IPMI credentials
   * (kvm only, all three together, or `removeIpmi`) are written in the submitting transaction,
   * never into the job's params or its event.
   */
  private async updateHost(caller: Caller, uuid: string, body: Record<string, unknown>) {
    const host = await loadVisible(this.ctx, hostSchema, uuid, caller);
    const { ipmiAddress, ipmiUsername, ipmiPassword, removeIpmi, ...changes } = body;
    const given = IPMI_FIELDS.filter((f) => body[f] !== undefined);
    const problems: FieldProblem[] = [];
    for (const f of [...given, ...(removeIpmi !== undefined ? ['removeIpmi'] : [])])
      if (host.hypervisorType !== 'kvm')
        problems.push({ field: f, problem: `only for kvm hosts; this host is ${host.hypervisorType}` });
    if (host.hypervisorType === 'kvm' && given.length > 0) {
      for (const f of IPMI_FIELDS)
        if (body[f] === undefined)
          problems.push({
            field: f,
            problem: `required with ${given.join(', ')}: IPMI fencing needs the BMC address, user and password`,
          });
      if (removeIpmi === true)
        problems.push({ field: 'removeIpmi', problem: 'give new IPMI credentials or remove them, not both' });
    }
    if (problems.length > 0) throw invalid(problems);
    return this.ctx.engine.submitAndStart(
      {
        kind: 'host.update',
        params: { uuid, changes },
        accountUuid: host.accountUuid,
        userUuid: caller.userUuid,
        resourceKind: family.kind,
        resourceUuid: uuid,
        queueKey: queueKey(family, uuid),
        requestId: caller.requestId,
      },
      async (tx) => {
        if (removeIpmi === true)
          await tx.deleteFrom('hostFenceCredentials').where('hostUuid', '=', uuid).execute();
        if (given.length === 0) return;
        const creds = {
          address: ipmiAddress as string,
          username: ipmiUsername as string,
          password: ipmiPassword as string,
        };
        await tx
          .insertInto('hostFenceCredentials')
          .values({ hostUuid: uuid, ...creds })
          .onConflict((oc) => oc.column('hostUuid').doUpdateSet(creds))
          .execute();
      },
    );
  }

  /**
   * Maintenance runs in its own queue (`host-maintenance:<uuid>`, one at a time cluster-wide), so
   * two maintain requests never evacuate one host at once; the host's other operations go on.
   * A second request while one is pending or running is refused (two at the same instant may
   * both pass this check; the queue then runs them one after the other).
   */
  private async maintain(caller: Caller, uuid: string, body: Record<string, unknown>) {
    const host = await loadVisible(this.ctx, hostSchema, uuid, caller);
    const running = await this.ctx.db
      .selectFrom('jobs')
      .select('uuid')
      .where('resourceUuid', '=', uuid)
      .where('kind', '=', 'host.maintain')
      .where('state', 'in', ['Pending', 'Running'])
      .executeTakeFirst();
    if (running || host.state === 'PreMaintenance')
      throw new CloudError(
        'Conflict',
        'HOST_BUSY',
        `host ${uuid} is already entering maintenance; wait for that job to finish`,
        { details: { state: host.state, ...(running ? { jobUuid: running.uuid } : {}) } },
      );
    return this.ctx.engine.submitAndStart({
      kind: 'host.maintain',
      params: { uuid, policy: (body.policy as string | undefined) ?? 'fail' },
      accountUuid: host.accountUuid,
      userUuid: caller.userUuid,
      resourceKind: family.kind,
      resourceUuid: uuid,
      queueKey: `host-maintenance:${uuid}`,
      requestId: caller.requestId,
    });
  }

  async create(caller: Caller, body: Record<string, unknown>) {
    const clusterUuid = body.clusterUuid as string;
    const cluster = await this.ctx.db
      .selectFrom('clusters')
      .select(['uuid', 'zoneUuid', 'hypervisorType'])
      .where('uuid', '=', clusterUuid)
      .executeTakeFirst();
    const problems: FieldProblem[] = [];
    if (!cluster) problems.push({ field: 'clusterUuid', problem: `no cluster ${clusterUuid}` });
    if (cluster) problems.push(...hypervisorProblems(cluster.hypervisorType, body));
    if (problems.length > 0 || !cluster)
      throw invalid(problems, cluster ? 'INVALID_ARGUMENT' : 'CLUSTER_NOT_FOUND');
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string) ?? null,
      zoneUuid: cluster.zoneUuid,
      clusterUuid,
      hypervisorType: cluster.hypervisorType,
      managementIp: body.managementIp as string,
      agentPort: (body.agentPort as number | undefined) ?? null,
      status: 'Connecting' as const,
      accountUuid: caller.accountUuid,
    };
    const params = { simulatorCpu: body.simulatorCpu, simulatorMemory: body.simulatorMemory };
    const secret = body.agentSecret as string | undefined;
    if (secret === undefined)
      return admitCreate(this.ctx, family, caller, row, params, { mapError: addressTaken });
    // the secrets are stored apart from the host (host_secrets, host_fence_credentials) in the
    // creating transaction: never in the job's params, an event, or any row a query of hosts can return
    return admitCreate(this.ctx, family, caller, row, params, {
      skipInsert: true,
      mapError: addressTaken,
      check: async (tx) => {
        await tx.insertInto('hosts').values(row).execute();
        await tx.insertInto('hostSecrets').values({ hostUuid: row.uuid, secret }).execute();
        if (body.ipmiAddress !== undefined)
          await tx
            .insertInto('hostFenceCredentials')
            .values({
              hostUuid: row.uuid,
              address: body.ipmiAddress as string,
              username: body.ipmiUsername as string,
              password: body.ipmiPassword as string,
            })
            .execute();
      },
    });
  }
}
