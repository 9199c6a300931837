/**
 * Every account's default security group, made on first use: the first list of security groups
 * by the account, its first group create, or any caller that needs its uuid (`ensureDefaultGroup`).
 * Rules: ingress of every protocol from the group's own members, egress to anywhere, for IPv4 and
 * IPv6 (Neutron's default group). It holds no NIC until one is put in it.
 *
 * Concurrent first uses make exactly one: the row is INSERTed with ON CONFLICT DO NOTHING against
 * the unique index `security_groups_default_key` (one `is_default` row per account); the losers'
 * inserts wait for the winner's transaction and then do nothing, and read the winner's row. The
 * rules go in the winner's transaction, so nobody sees the group without them.
 */
import type { Db } from '../../../db/pool.js';
import type { EventBus } from '../../../engine/events.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { resourceEvent } from '../../common.js';
import { DEFAULT_GROUP_NAME, securityGroupFamily } from './model.js';

async function findDefault(db: Db, accountUuid: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('securityGroups')
    .select('uuid')
    .where('accountUuid', '=', accountUuid)
    .where('isDefault', '=', true)
    .executeTakeFirst();
  return row?.uuid;
}

/** The uuid of the account's default group, made now when it has none. */
export async function ensureDefaultGroup(db: Db, events: EventBus, accountUuid: string): Promise<string> {
  const existing = await findDefault(db, accountUuid);
  if (existing) return existing;
  const made = await events.inTransaction(db, async (tx, batch) => {
    const uuid = newId();
    const row = await tx
      .insertInto('securityGroups')
      .values({
        uuid,
        name: DEFAULT_GROUP_NAME,
        description: 'the account’s default group: ingress from its members, egress to anywhere',
        accountUuid,
        isDefault: true,
      })
      .onConflict((oc) => oc.doNothing())
      .returning(['uuid', 'accountUuid'])
      .executeTakeFirst();
    if (!row) return undefined; // a concurrent first use made it
    await tx
      .insertInto('securityGroupRules')
      .values(
        ([4, 6] as const).flatMap((ipVersion) => [
          {
            uuid: newId(),
            securityGroupUuid: uuid,
            accountUuid,
            direction: 'ingress' as const,
            protocol: 'all' as const,
            portStart: null,
            portEnd: null,
            remoteCidr: null,
            remoteSecurityGroupUuid: uuid,
            ipVersion,
            description: 'from the members of this group',
          },
          {
            uuid: newId(),
            securityGroupUuid: uuid,
            accountUuid,
            direction: 'egress' as const,
            protocol: 'all' as const,
            portStart: null,
            portEnd: null,
            remoteCidr: null,
            remoteSecurityGroupUuid: null,
            ipVersion,
            description: 'to anywhere',
          },
        ]),
      )
      .execute();
    batch.add(
      resourceEvent(securityGroupFamily, row, 'created', { name: DEFAULT_GROUP_NAME, isDefault: true }),
    );
    return uuid;
  });
  if (made) return made;
  const winner = await findDefault(db, accountUuid);
  if (winner) return winner;
  // only possible if a group named 'default' predates the reservation of the name
  throw new CloudError(
    'Conflict',
    'SECURITY_GROUP_NAME_TAKEN',
    `account ${accountUuid} has a security group named '${DEFAULT_GROUP_NAME}' that is not its default group; rename it`,
  );
}
