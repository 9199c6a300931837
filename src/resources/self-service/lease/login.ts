/**
 * The login of a handed-out pool VM (docs/self-service.md "Login"). Pool VMs are made and booted
 * before anyone asks for them, so the login cannot be in their first user-data. At hand-out:
 * 1. admission (loginOf): the caller's SSH public key is checked, or a password generated — its
 *    clear text goes only into the allocate answer (`secrets.password`), its SHA-512-crypt hash
 *    into the job's parameters;
 * 2. the allocate job (deliverLogin) writes the VM's new user-data — the pool's bootstrap, once
 *    per VM, and a cloud-config making the login user (user-data.ts) — with a new cloud-init
 *    instance id (the lease's uuid), then restarts the VM (stop, start): the host rebuilds the
 *    config drive at every start, and cloud-init, seeing a new instance, applies the login. The
 *    lease's `loginState` goes Delivering → Delivered (`lease.login.delivered`).
 * A pool VM's first user-data, the bootstrap alone, is written in its admission (recordBootstrap).
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Tx } from '../../../db/transaction.js';
import { invalid } from '../../../kernel/errors.js';
import { hashPassword } from '../../../kernel/sha512-crypt.js';
import { resourceEvent } from '../../common.js';
import { runSystemVmOperation } from '../../compute/vm/system-ops.js';
import type { ServiceContext } from '../../service.js';
import { leaseFamily } from './model.js';
import { handOutUserData, type Login, sshKeyProblem } from './user-data.js';

const PASSWORD_ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** 20 characters of 57 (no 0/O/1/l/I): about 116 bits. */
export function generatePassword(): string {
  // 256 − 256 % 57 = 228: bytes at or above it are skipped, so every character is equally likely
  let out = '';
  while (out.length < 20)
    for (const b of randomBytes(32)) if (b < 228 && out.length < 20) out += PASSWORD_ALPHABET[b % 57];
  return out;
}

/** The login an allocate body asks for, checked; the clear password (if any) to show once. */
export function loginOf(
  body: Record<string, unknown>,
  user: string,
): { login?: Login; method?: 'ssh-key' | 'password'; password?: string } {
  const key = body.sshKey as string | undefined;
  if (key !== undefined) {
    const problem = sshKeyProblem(key);
    if (problem) throw invalid([problem], 'INVALID_SSH_KEY');
  }
  const password = body.password === true ? generatePassword() : undefined;
  if (key === undefined && password === undefined) return {};
  const login: Login = {
    user,
    sshKeys: key !== undefined ? [key.trim()] : [],
    ...(password ? { passwordHash: hashPassword(password) } : {}),
  };
  return { login, method: password ? 'password' : 'ssh-key', ...(password ? { password } : {}) };
}

/** In a pool VM's admitting transaction: its first user-data is its pool's bootstrap. */
export async function recordBootstrap(tx: Tx, poolUuid: string, vmUuid: string): Promise<void> {
  await sql`
    insert into vm_guest_configs (vm_uuid, user_data)
    select ${vmUuid}, user_data from pools where uuid = ${poolUuid} and user_data is not null`.execute(tx);
}

/** The allocate job's step: the VM's user-data with the login, then a restart so the guest takes it. */
export async function deliverLogin(
  ctx: ServiceContext,
  leaseUuid: string,
  login: Login | undefined,
  jobUuid: string,
): Promise<void> {
  if (!login) return;
  const lease = await ctx.db
    .selectFrom('leases as l')
    .innerJoin('pools as p', 'p.uuid', 'l.poolUuid')
    .select(['l.uuid', 'l.accountUuid', 'l.vmUuid', 'l.state', 'l.loginState', 'l.loginMethod', 'p.userData'])
    .where('l.uuid', '=', leaseUuid)
    .executeTakeFirstOrThrow();
  if (!lease.vmUuid || lease.loginState === 'Delivered' || lease.state === 'Ended') return;
  const userData = handOutUserData(lease.userData, login);
  await ctx.db
    .insertInto('vmGuestConfigs')
    .values({ vmUuid: lease.vmUuid, userData, instanceId: leaseUuid })
    .onConflict((oc) =>
      oc.column('vmUuid').doUpdateSet({ userData, instanceId: leaseUuid, updatedAt: new Date() }),
    )
    .execute();
  const requestId = `lease-login-${leaseUuid}`;
  await runSystemVmOperation(ctx, lease.vmUuid, 'stop', requestId, { force: false });
  await runSystemVmOperation(ctx, lease.vmUuid, 'start', requestId);
  await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    await tx
      .updateTable('leases')
      .set({ loginState: 'Delivered', updatedAt: new Date() })
      .where('uuid', '=', leaseUuid)
      .execute();
    batch.add({
      ...resourceEvent(leaseFamily, lease, 'login.delivered', {
        method: lease.loginMethod,
        user: login.user,
      }),
      jobUuid,
    });
  });
}
