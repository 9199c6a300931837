/**
 * Accounts (tenants) and users. Only the admin creates accounts; an account's users act for it.
 * Passwords are hashed at admission: no plaintext ever reaches a job row, an event or a log, and
 * no hash reaches an event either. A password change revokes the user's other sessions in the
 * transaction that changes it (the session making the change stays); deleting a user or an
 * account (delete.ts) ends their sessions with them.
 */
import { accounts as accountContract, users as userContract } from '../../../contract/foundation.js';
import { mapUnique } from '../../../db/errors.js';
import type { FlowDef } from '../../../engine/flow.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, forbidden, invalidField, notFound } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import {
  admitCreate,
  changeFlow,
  createRecordStep,
  deleteFlow,
  type Family,
  loadVisible,
  readRow,
  resourceEvent,
  submitFor,
} from '../../common.js';
import type { FlowDeps, KindService, ServiceContext } from '../../service.js';
import { revokeSessions } from '../session/sessions.js';
import { ADMIN_ACCOUNT } from './bootstrap.js';
import { accountDeleteFlow, notEmpty, ownedResources } from './delete.js';
import { hashPassword } from './password.js';

const accountFamily: Family = { singular: 'account', kind: 'accounts', table: 'accounts' };
const userFamily: Family = { singular: 'user', kind: 'users', table: 'users' };

export const accountSchema: KindSchema = {
  kind: 'accounts',
  table: 'accounts',
  // an account row's owner is itself: a normal account sees only its own row
  visibility: 'admin',
  fields: {
    uuid: 'uuid',
    name: 'string',
    type: { enum: ['admin', 'normal'] },
    description: 'string',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: { users: { kind: 'users', local: 'uuid', remote: 'accountUuid', many: true } },
  defaultSort: 'createdAt',
};

export const userSchema: KindSchema = {
  kind: 'users',
  table: 'users',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    name: 'string',
    accountUuid: 'uuid',
    description: 'string',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: { account: { kind: 'accounts', local: 'accountUuid', remote: 'uuid' } },
  defaultSort: 'createdAt',
};

export class AccountService implements KindService {
  readonly contract = accountContract;
  readonly schema = accountSchema;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register({
      kind: 'account.create',
      recovery: 'resume',
      steps: [createRecordStep(accountFamily)],
      result: (c) => readRow(c.db, 'accounts', c.job.resourceUuid!),
    });
    ctx.engine.register(changeFlow(accountFamily, 'account.update', 'updated'));
    ctx.engine.register(accountDeleteFlow(ctx.registry));
  }

  async create(caller: Caller, body: Record<string, unknown>) {
    const uuid = newId();
    const passwordHash = await hashPassword(body.password as string);
    const row = {
      uuid,
      name: body.name as string,
      type: 'normal' as const,
      description: (body.description as string) ?? null,
      accountUuid: uuid,
    };
    // accounts have no accountUuid column: the family helper needs one for events and job ownership
    const { accountUuid: _, ...record } = row;
    return admitCreate(
      this.ctx,
      { ...accountFamily },
      caller,
      { ...record, accountUuid: uuid } as never,
      { name: row.name },
      {
        check: async (tx) => {
          await tx.insertInto('accounts').values(record).execute();
          await tx
            .insertInto('users')
            .values({ uuid: newId(), accountUuid: uuid, name: row.name, passwordHash })
            .execute();
        },
        mapError: (err) => mapUnique(err, 'ACCOUNT_NAME_TAKEN', 'an account with this name already exists'),
        skipInsert: true,
      },
    );
  }

  update = async (caller: Caller, uuid: string, body: Record<string, unknown>) =>
    submitFor(
      this.ctx,
      accountFamily,
      caller,
      { ...(await loadVisible(this.ctx, this.schema, uuid, caller)), accountUuid: uuid },
      'account.update',
      { changes: body },
    );

  async remove(caller: Caller, uuid: string) {
    const row = await loadVisible(this.ctx, this.schema, uuid, caller);
    if (row.name === ADMIN_ACCOUNT)
      throw new CloudError('Conflict', 'ACCOUNT_IS_ADMIN', 'the admin account cannot be deleted', {
        details: { kind: 'account', uuid },
      });
    // answered at once; the flow checks again under the account's row lock
    const owned = await ownedResources(this.ctx.db, this.ctx.registry, uuid);
    if (Object.keys(owned).length > 0) throw notEmpty(uuid, owned);
    return submitFor(this.ctx, accountFamily, caller, { ...row, accountUuid: uuid }, 'account.delete');
  }
}

export class UserService implements KindService {
  readonly contract = userContract;
  readonly schema = userSchema;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register({
      kind: 'user.create',
      recovery: 'resume',
      steps: [createRecordStep(userFamily)],
      result: (c) => readRow(c.db, 'users', c.job.resourceUuid!).then(stripSecret),
    });
    ctx.engine.register(userUpdateFlow);
    ctx.engine.register(deleteFlow(userFamily, []));
  }

  async create(caller: Caller, body: Record<string, unknown>) {
    const accountUuid = (body.accountUuid as string | undefined) ?? caller.accountUuid;
    if (accountUuid !== caller.accountUuid && !caller.isAdmin)
      throw forbidden('only the admin may add users to another account');
    const account = await this.ctx.db
      .selectFrom('accounts')
      .select('uuid')
      .where('uuid', '=', accountUuid)
      .executeTakeFirst();
    if (!account) throw invalidField('accountUuid', `no account ${accountUuid}`, 'ACCOUNT_NOT_FOUND');
    const row = {
      uuid: newId(),
      name: body.name as string,
      accountUuid,
      description: (body.description as string) ?? null,
      passwordHash: await hashPassword(body.password as string),
    };
    return admitCreate(
      this.ctx,
      userFamily,
      caller,
      row,
      { name: row.name, accountUuid },
      {
        mapError: (err) => mapUnique(err, 'USER_NAME_TAKEN', 'the account already has a user with this name'),
      },
    );
  }

  update = async (caller: Caller, uuid: string, body: Record<string, unknown>) => {
    const row = await loadVisible(this.ctx, this.schema, uuid, caller);
    const { password, ...rest } = body;
    const changes: Record<string, unknown> = { ...rest };
    if (typeof password === 'string') changes.passwordHash = await hashPassword(password);
    // the session making the change stays; a change made for another user revokes all of theirs
    const keepSession = caller.userUuid === uuid ? caller.sessionUuid : undefined;
    return submitFor(this.ctx, userFamily, caller, row, 'user.update', {
      changes,
      ...(keepSession ? { keepSession } : {}),
    });
  };

  async remove(caller: Caller, uuid: string) {
    const row = await loadVisible(this.ctx, this.schema, uuid, caller);
    const account = await this.ctx.db
      .selectFrom('accounts')
      .select('name')
      .where('uuid', '=', row.accountUuid)
      .executeTakeFirst();
    if (account?.name === row.name)
      throw new CloudError(
        'Conflict',
        'USER_IS_ACCOUNT_OWNER',
        'the account’s first user is deleted with the account',
      );
    return submitFor(this.ctx, userFamily, caller, row, 'user.delete');
  }
}

interface UserUpdateParams {
  uuid: string;
  changes: Record<string, unknown>;
  keepSession?: string;
}

/** Sets the user's columns; with a new password, revokes the user's sessions but `keepSession`. */
const userUpdateFlow: FlowDef<UserUpdateParams, FlowDeps> = {
  kind: 'user.update',
  recovery: 'resume',
  steps: [
    {
      name: 'apply',
      describe: 'user.update',
      async run(ctx) {
        const { uuid, changes, keepSession } = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const row = await tx
            .updateTable('users')
            .set({ ...changes, updatedAt: new Date() })
            .where('uuid', '=', uuid)
            .returning(['uuid', 'accountUuid'])
            .executeTakeFirst();
          if (!row) throw notFound('user', uuid);
          const { passwordHash, ...visible } = changes;
          const passwordChanged = passwordHash !== undefined;
          batch.add({
            ...resourceEvent(userFamily, row, 'updated', {
              ...visible,
              ...(passwordChanged ? { passwordChanged } : {}),
            }),
            jobUuid: ctx.job.uuid,
          });
          if (!passwordChanged) return;
          const revoked = await revokeSessions(tx, { userUuid: uuid }, keepSession);
          batch.add({
            ...resourceEvent(userFamily, row, 'sessions.revoked', {
              count: revoked,
              reason: 'password changed',
              ...(keepSession ? { except: keepSession } : {}),
            }),
            jobUuid: ctx.job.uuid,
          });
        });
      },
    },
  ],
  result: (c) => readRow(c.db, 'users', c.params.uuid).then(stripSecret),
};

function stripSecret(row: Record<string, unknown> | undefined) {
  if (!row) return row;
  const { passwordHash: _, ...rest } = row;
  return rest;
}
