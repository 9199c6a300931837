/**
 * add-nics / remove-nics: chains in the group's queue. The hosts to re-sync are the union of
 * those affected before the change and after it (hostsAffectedByGroups), so a host that no
 * longer runs a member gets a state without it, and every host with a rule naming the group as
 * remote gets the new address set.
 *
 *   read-members (local) → change-members → sync-hosts
 *
 * `read-members` notes which of the NICs were members and the hosts affected before; the journal
 * carries it to `change-members`, whose rollback puts the rows back as they were and re-syncs the
 * hosts affected before, with the change (it may have reached them) and after the restore.
 */
import type { Db } from '../../../db/pool.js';
import type { FlowDef, StepContext } from '../../../engine/flow.js';
import type { Caller } from '../../../kernel/caller.js';
import { missingReference, notFound } from '../../../kernel/errors.js';
import { resourceEvent } from '../../common.js';
import type { FlowDeps } from '../../service.js';
import { hostsAffectedByGroups } from './host-state.js';
import { securityGroupFamily } from './model.js';

export interface MembershipParams {
  uuid: string;
  vmNicUuids: string[];
}

type Ctx = StepContext<MembershipParams, FlowDeps>;
type Change = 'add' | 'remove';

interface MembershipData {
  wereMembers?: string[];
  hostsBefore?: string[];
}

/**
 * Refuses NICs the caller may not use: missing ones, and those of another account than the
 * group's (a 404 naming the NIC either way: no existence leak).
 */
export async function checkNics(db: Db, caller: Caller, group: { accountUuid: string }, nics: string[]) {
  const rows = await db
    .selectFrom('vmNics')
    .select(['uuid', 'accountUuid'])
    .where('uuid', 'in', nics)
    .execute();
  const usable = new Set(
    rows
      .filter(
        (r) =>
          r.accountUuid === group.accountUuid && (caller.isAdmin || r.accountUuid === caller.accountUuid),
      )
      .map((r) => r.uuid),
  );
  const missing = nics.find((n) => !usable.has(n));
  if (missing) throw missingReference('vmNicUuids', 'vm-nic', missing);
}

async function members(db: Db, group: string, nics: string[]): Promise<string[]> {
  const rows = await db
    .selectFrom('vmNicSecurityGroups')
    .select('vmNicUuid')
    .where('securityGroupUuid', '=', group)
    .where('vmNicUuid', 'in', nics)
    .execute();
  return rows.map((r) => r.vmNicUuid).sort();
}

/** Inserts memberships of the NICs that still exist (and belong to the group's account). */
async function insertMembers(db: Db, group: string, nics: string[]): Promise<string[]> {
  if (nics.length === 0) return [];
  const rows = await db
    .insertInto('vmNicSecurityGroups')
    .columns(['vmNicUuid', 'securityGroupUuid'])
    .expression((eb) =>
      eb
        .selectFrom('vmNics as n')
        .innerJoin('securityGroups as g', 'g.accountUuid', 'n.accountUuid')
        .select(['n.uuid', 'g.uuid'])
        .where('g.uuid', '=', group)
        .where('n.uuid', 'in', nics),
    )
    .onConflict((oc) => oc.doNothing())
    .returning('vmNicUuid')
    .execute();
  return rows.map((r) => r.vmNicUuid);
}

async function deleteMembers(db: Db, group: string, nics: string[]): Promise<string[]> {
  if (nics.length === 0) return [];
  const rows = await db
    .deleteFrom('vmNicSecurityGroups')
    .where('securityGroupUuid', '=', group)
    .where('vmNicUuid', 'in', nics)
    .returning('vmNicUuid')
    .execute();
  return rows.map((r) => r.vmNicUuid);
}

/** Re-syncs the hosts affected before the change, now, and `also`. */
async function syncAffected(ctx: Ctx, also: string[] = []): Promise<void> {
  const data = ctx.data as MembershipData;
  const now = await hostsAffectedByGroups(ctx.db, [ctx.params.uuid]);
  await ctx.deps.network.sync([...(data.hostsBefore ?? []), ...now, ...also]);
}

async function emitChange(ctx: Ctx, type: string, nics: string[]): Promise<void> {
  if (nics.length === 0) return;
  const group = await ctx.db
    .selectFrom('securityGroups')
    .select(['uuid', 'accountUuid'])
    .where('uuid', '=', ctx.params.uuid)
    .executeTakeFirst();
  if (!group) return;
  await ctx.emit([
    { ...resourceEvent(securityGroupFamily, group, type, { vmNicUuids: nics }), jobUuid: ctx.job.uuid },
  ]);
}

function membershipFlow(change: Change): FlowDef<MembershipParams, FlowDeps> {
  return {
    kind: `security-group.${change}-nics`,
    recovery: 'resume',
    steps: [
      {
        name: 'read-members',
        describe: 'read the current members and the hosts they concern',
        local: true,
        async run(ctx) {
          const data = ctx.data as MembershipData;
          data.wereMembers = await members(ctx.db, ctx.params.uuid, ctx.params.vmNicUuids);
          data.hostsBefore = await hostsAffectedByGroups(ctx.db, [ctx.params.uuid]);
        },
      },
      {
        name: 'change-members',
        describe: change === 'add' ? 'put the NICs in the group' : 'take the NICs out of the group',
        async run(ctx) {
          const group = await ctx.db
            .selectFrom('securityGroups')
            .select('uuid')
            .where('uuid', '=', ctx.params.uuid)
            .executeTakeFirst();
          if (!group) throw notFound('security-group', ctx.params.uuid);
          if (change === 'add') {
            const added = await insertMembers(ctx.db, ctx.params.uuid, ctx.params.vmNicUuids);
            // a NIC deleted since admission cannot join (the rollback takes the others out)
            const now = new Set(await members(ctx.db, ctx.params.uuid, ctx.params.vmNicUuids));
            const gone = ctx.params.vmNicUuids.find((n) => !now.has(n));
            if (gone) throw notFound('vm-nic', gone);
            await emitChange(ctx, 'nics-added', added);
          } else {
            const removed = await deleteMembers(ctx.db, ctx.params.uuid, ctx.params.vmNicUuids);
            await emitChange(ctx, 'nics-removed', removed);
          }
        },
        async rollback(ctx) {
          const data = ctx.data as MembershipData;
          if (!data.wereMembers) return; // read-members never ran: nothing changed
          const were = new Set(data.wereMembers);
          // the hosts the forward change reached (one that gained a member must lose it again)
          const changed = await hostsAffectedByGroups(ctx.db, [ctx.params.uuid]);
          if (change === 'add') {
            const joined = ctx.params.vmNicUuids.filter((n) => !were.has(n));
            await emitChange(ctx, 'nics-removed', await deleteMembers(ctx.db, ctx.params.uuid, joined));
          } else {
            await emitChange(ctx, 'nics-added', await insertMembers(ctx.db, ctx.params.uuid, [...were]));
          }
          await syncAffected(ctx, changed);
        },
      },
      {
        name: 'sync-hosts',
        describe: 'send the affected hosts their security-group state',
        async run(ctx) {
          await syncAffected(ctx);
        },
      },
    ],
    result: async (ctx) =>
      ctx.db.selectFrom('securityGroups').selectAll().where('uuid', '=', ctx.params.uuid).executeTakeFirst(),
  };
}

export const addNicsFlow = membershipFlow('add');
export const removeNicsFlow = membershipFlow('remove');
