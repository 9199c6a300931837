/** Hosts: hypervisor machines in a cluster. Admin-only. Adding one runs the host.create chain. */
import { hosts as contract } from '../../../contract/foundation.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, type FieldProblem, invalid } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { admitCreate, loadVisible, submitFor } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, type StandardOperations, standardOperations } from '../../standard.js';
import { hostFamily as family, hostCreateFlow, hostReconnectFlow } from './flows.js';

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
    state: { enum: ['Enabled', 'Disabled', 'Maintenance'] },
    status: { enum: ['Connecting', 'Connected', 'Disconnected'] },
    cpuTotal: 'int',
    cpuUsed: 'int',
    memoryTotal: 'int',
    memoryUsed: 'int',
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
    const ops = standardOperations(ctx, {
      family,
      schema: hostSchema,
      states: { ...ENABLE_DISABLE, maintain: 'Maintenance' },
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
    this.update = ops.update;
    this.remove = ops.remove;
    this.actions = {
      ...ops.actions,
      reconnect: async (caller, uuid) =>
        submitFor(ctx, family, caller, await loadVisible(ctx, hostSchema, uuid, caller), 'host.reconnect'),
    };
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
    if (
      cluster &&
      cluster.hypervisorType !== 'simulator' &&
      (body.simulatorCpu !== undefined || body.simulatorMemory !== undefined)
    ) {
      problems.push({
        field: 'simulatorCpu',
        problem: `only for simulator clusters; this cluster is ${cluster.hypervisorType}`,
      });
    }
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
      status: 'Connecting' as const,
      accountUuid: caller.accountUuid,
    };
    const params = { simulatorCpu: body.simulatorCpu, simulatorMemory: body.simulatorMemory };
    return admitCreate(this.ctx, family, caller, row, params, { mapError: addressTaken });
  }
}
