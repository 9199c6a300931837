/** Zones: the top of the infrastructure tree. Admin-managed, visible to every account. */
import { zones as contract } from '../../contract/kinds.js';
import { mapUnique } from '../../db/errors.js';
import type { KindSchema } from '../../engine/query/schema.js';
import type { Caller } from '../../kernel/caller.js';
import { newId } from '../../kernel/ids.js';
import {
  admitCreate,
  assertNoChildren,
  changeFlow,
  createRecordStep,
  deleteFlow,
  type Family,
  loadVisible,
  readRow,
  submitFor,
} from '../common.js';
import type { KindService, ServiceContext } from '../service.js';

const family: Family = { singular: 'zone', kind: 'zones', table: 'zones' };
const blockers = [{ table: 'clusters' as const, column: 'zoneUuid', what: 'clusters' }];
const nameTaken = (err: unknown) => mapUnique(err, 'ZONE_NAME_TAKEN', 'a zone with this name already exists');

export const zoneSchema: KindSchema = {
  kind: 'zones',
  table: 'zones',
  visibility: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    clusters: { kind: 'clusters', local: 'uuid', remote: 'zoneUuid', many: true },
    hosts: { kind: 'hosts', local: 'uuid', remote: 'zoneUuid', many: true },
  },
  defaultSort: 'createdAt',
};

export class ZoneService implements KindService {
  readonly contract = contract;
  readonly schema = zoneSchema;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register({
      kind: 'zone.create',
      recovery: 'resume',
      steps: [createRecordStep(family)],
      result: (c) => readRow(c.db, 'zones', c.job.resourceUuid!),
    });
    ctx.engine.register(changeFlow(family, 'zone.update', 'updated', { mapError: nameTaken }));
    ctx.engine.register(changeFlow(family, 'zone.enable', 'state.changed'));
    ctx.engine.register(changeFlow(family, 'zone.disable', 'state.changed'));
    ctx.engine.register(deleteFlow(family, blockers));
  }

  create(caller: Caller, body: Record<string, unknown>) {
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string) ?? null,
      accountUuid: caller.accountUuid,
    };
    return admitCreate(this.ctx, family, caller, row, body, { mapError: nameTaken });
  }

  update = async (caller: Caller, uuid: string, body: Record<string, unknown>) => {
    const row = await loadVisible(this.ctx, this.schema, uuid, caller);
    return submitFor(this.ctx, family, caller, row, 'zone.update', { changes: body });
  };

  async remove(caller: Caller, uuid: string) {
    const row = await loadVisible(this.ctx, this.schema, uuid, caller);
    await assertNoChildren(this.ctx.db, family, uuid, blockers); // answered at once; the flow checks again
    return submitFor(this.ctx, family, caller, row, 'zone.delete');
  }

  actions = {
    enable: async (caller: Caller, uuid: string) =>
      submitFor(
        this.ctx,
        family,
        caller,
        await loadVisible(this.ctx, this.schema, uuid, caller),
        'zone.enable',
        { changes: { state: 'Enabled' } },
      ),
    disable: async (caller: Caller, uuid: string) =>
      submitFor(
        this.ctx,
        family,
        caller,
        await loadVisible(this.ctx, this.schema, uuid, caller),
        'zone.disable',
        { changes: { state: 'Disabled' } },
      ),
  };
}
