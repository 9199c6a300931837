/**
 * Deleting an account. Refused with 409 ACCOUNT_NOT_EMPTY, listing each kind it still owns and
 * how many, while it owns any resource: VMs, volumes, networks, addresses… hold capacity, IPs
 * and quota that only their own delete jobs release, so an account is emptied through them first
 * (there is no cascade). What exists only for the account goes with it in one transaction: its
 * users, quotas, its default security group (made on first use, never by the tenant) and its
 * sessions, revoked in that same transaction (and evicted from the node's token cache by the
 * `account.deleted` event), so a deleted account's tokens stop working at once. Jobs and events
 * stay: they are the audit trail.
 */
import { sql } from 'kysely';
import { KINDS } from '../../../contract/kinds.js';
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import type { FlowDef } from '../../../engine/flow.js';
import type { KindRegistry, KindSchema } from '../../../engine/query/schema.js';
import { CloudError } from '../../../kernel/errors.js';
import type { FlowDeps } from '../../service.js';
import { revokeSessions } from '../session/sessions.js';

/** Kinds an account has rows of that are not resources it must delete itself. */
const NOT_RESOURCES = new Set(['accounts', 'users', 'jobs', 'events', 'tags', 'quotas']);

function ownedKinds(registry: KindRegistry): KindSchema[] {
  return KINDS.map((k) => registry.get(k.kind)).filter(
    (s): s is KindSchema =>
      s !== undefined && s.fields.accountUuid !== undefined && !NOT_RESOURCES.has(s.kind),
  );
}

/** Kind → how many the account owns, for every kind it owns any of (its default group aside). */
export async function ownedResources(
  db: Db | Tx,
  registry: KindRegistry,
  accountUuid: string,
): Promise<Record<string, number>> {
  const owned: Record<string, number> = {};
  for (const schema of ownedKinds(registry)) {
    // the default security group and its rules are the account's own furniture: they go with it
    const furniture =
      schema.kind === 'security-groups'
        ? sql`and not is_default`
        : schema.kind === 'security-group-rules'
          ? sql`and security_group_uuid not in (select uuid from security_groups where account_uuid = ${accountUuid} and is_default)`
          : sql``;
    const { rows } = await sql<{ n: string }>`select count(*) as n from ${sql.table(schema.table)}
      where account_uuid = ${accountUuid} ${furniture}`.execute(db);
    const n = Number(rows[0]?.n ?? 0);
    if (n > 0) owned[schema.kind] = n;
  }
  return owned;
}

export function notEmpty(accountUuid: string, owned: Record<string, number>): CloudError {
  const list = Object.entries(owned)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ');
  return new CloudError(
    'Conflict',
    'ACCOUNT_NOT_EMPTY',
    `account ${accountUuid} still owns ${list}; delete them first`,
    { details: { kind: 'account', uuid: accountUuid, owned } },
  );
}

export function accountDeleteFlow(registry: KindRegistry): FlowDef<{ uuid: string }, FlowDeps> {
  return {
    kind: 'account.delete',
    recovery: 'resume',
    steps: [
      {
        name: 'delete-record',
        describe: 'delete the account, its users and quotas, and revoke its sessions',
        async run(ctx) {
          const uuid = ctx.params.uuid;
          await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
            // the row lock serialises concurrent deletes of the account
            const account = await tx
              .selectFrom('accounts')
              .select(['uuid', 'name'])
              .where('uuid', '=', uuid)
              .forUpdate()
              .executeTakeFirst();
            if (!account) return; // already gone: deleting is idempotent
            const owned = await ownedResources(tx, registry, uuid);
            if (Object.keys(owned).length > 0) throw notEmpty(uuid, owned);
            const revoked = await revokeSessions(tx, { accountUuid: uuid });
            await sql`delete from security_group_rules where security_group_uuid in
              (select uuid from security_groups where account_uuid = ${uuid} and is_default)`.execute(tx);
            await tx.deleteFrom('securityGroups').where('accountUuid', '=', uuid).execute();
            await tx.deleteFrom('tags').where('accountUuid', '=', uuid).execute();
            // users, sessions and quotas go by their foreign keys (on delete cascade)
            await tx.deleteFrom('accounts').where('uuid', '=', uuid).execute();
            batch.add({
              type: 'account.deleted',
              resourceKind: 'accounts',
              resourceUuid: uuid,
              accountUuid: uuid,
              data: { name: account.name, sessionsRevoked: revoked },
              jobUuid: ctx.job.uuid,
            });
          });
        },
      },
    ],
  };
}
