/**
 * What the pool scenarios beyond pool.test.ts share (sizing, health): a waiter, the pool's rows by
 * state, the pool and lease services, a pool made through the API and users of the `dev` tenant.
 */
import type { LeaseService } from '../../src/resources/self-service/lease/service.js';
import type { PoolService } from '../../src/resources/self-service/pool/service.js';
import type { Api, TestNode } from '../support/node.js';
import type { NetEnv } from './network-fixtures.js';
import { ok } from './vm-env.js';

export async function until<T>(
  what: string,
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function poolCounts(t: TestNode, pool: string) {
  const rows = await t.db.db
    .selectFrom('poolVms')
    .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
    .where('poolUuid', '=', pool)
    .groupBy('state')
    .execute();
  const c = { Provisioning: 0, Ready: 0, Allocated: 0, Discarding: 0 };
  for (const r of rows) c[r.state] = Number(r.n);
  return { ...c, total: c.Provisioning + c.Ready + c.Allocated + c.Discarding };
}

export const poolService = (t: TestNode) =>
  t.node.kindServices.find((s) => s.contract.kind === 'pools') as unknown as PoolService;
export const leaseService = (t: TestNode) =>
  t.node.kindServices.find((s) => s.contract.kind === 'leases') as unknown as LeaseService;

export async function makePool(t: TestNode, env: NetEnv, body: Record<string, unknown>): Promise<string> {
  const job = await ok(t, 'POST', '/v1/pools', {
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    l3NetworkUuids: [env.l3],
    shared: true,
    ...body,
  });
  return job.resourceUuid;
}

/** A tenant account `name` with room for `vms` small VMs, and `n` users of it logged in. */
export async function tenantWithUsers(
  t: TestNode,
  name: string,
  n: number,
): Promise<{ account: string; users: Api[] }> {
  const GiB = 1024 ** 3;
  const account = (await ok(t, 'POST', '/v1/accounts', { name, password: `${name}-password` })).resourceUuid;
  const quota = await t.admin.patch(`/v1/quotas/${account}`, {
    'vm.num': 500,
    'vm.cpu': 1000,
    'vm.memory': 2000 * GiB,
    'volume.capacity': 100_000 * GiB,
  });
  if (![200, 202].includes(quota.status)) throw new Error(JSON.stringify(quota.body));
  const users: Api[] = [];
  for (let i = 0; i < n; i++) {
    const user = `${name}-user-${i}`;
    await ok(t, 'POST', '/v1/users', { name: user, password: `${user}-password`, accountUuid: account });
    users.push(await t.anon.login(name, `${user}-password`, user));
  }
  return { account, users };
}
