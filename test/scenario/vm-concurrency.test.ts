/**
 * VM creates under concurrency: 500 at once on 20 hosts, one NIC each, all end Running with every
 * invariant holding (host and storage counters = Σ of what they hold, nothing over-committed,
 * nothing left transitional, no duplicate IP, every NIC holding its address, every host's DHCP
 * serving exactly its VMs' NICs); creates racing for too little room end with exactly as many VMs as fit, the rest
 * failed with the scheduler's explanation; 200 creates against a quota of 10 admit exactly 10.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertInvariants } from '../support/invariants.js';
import { startTestNode, type TestNode } from '../support/node.js';
import { addL2, addL3, dhcpNicsOn } from './network-fixtures.js';
import { buildVmEnv, GiB, type VmEnv } from './vm-env.js';

let t: TestNode;

before(async () => {
  t = await startTestNode();
});
after(() => t.stop());

async function finished(uuids: string[]): Promise<any[]> {
  return Promise.all(uuids.map(async (u) => (await t.admin.get(`/v1/jobs/${u}?wait=true`)).body));
}

describe('concurrent VM creates', () => {
  let env: VmEnv;
  let l3: string;
  before(async () => {
    env = await buildVmEnv(t, { hosts: 20, prefix: 'cc', hostCpu: 16, hostMemory: 40 * GiB });
    // one NIC each on a flat L3 whose /22 has room for all of them
    l3 = (await addL3(t, await addL2(t, env, 'eth0'), { cidr: '10.250.0.0/22' })).l3;
  });

  test('500 concurrent creates on 20 hosts, one NIC each: every one accepted and Running, no duplicate IP, every invariant holds', async () => {
    const started = Date.now();
    const accepted = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        t.admin.post('/v1/vms', {
          name: `cc-${i}`,
          imageUuid: env.image,
          instanceOfferingUuid: env.small,
          l3NetworkUuids: [l3],
        }),
      ),
    );
    const acceptedMs = Date.now() - started;
    for (const r of accepted) assert.equal(r.status, 202, JSON.stringify(r.body));
    const jobs = await finished(accepted.map((r) => r.body.uuid));
    const failed = jobs.filter((j) => j.state !== 'Succeeded');
    assert.deepEqual(
      failed.map((j) => j.error),
      [],
      'every create succeeded',
    );
    console.log(
      `# 500 concurrent creates: accepted in ${acceptedMs} ms, all Running after ${Date.now() - started} ms`,
    );
    const running = await t.db.db
      .selectFrom('vms')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('state', '=', 'Running')
      .where('clusterUuid', '=', env.cluster)
      .executeTakeFirstOrThrow();
    assert.equal(Number(running.n), 500);
    const spread = await t.db.db
      .selectFrom('hosts')
      .select(['vmCount'])
      .where('clusterUuid', '=', env.cluster)
      .execute();
    assert.equal(
      spread.reduce((s, h) => s + h.vmCount, 0),
      500,
    );
    assert.ok(
      spread.every((h) => h.vmCount > 0),
      'spread placement uses every host',
    );
    const nics = await t.db.db
      .selectFrom('vmNics')
      .select(['uuid', 'ip', 'mac', 'hostUuid'])
      .where('l3NetworkUuid', '=', l3)
      .execute();
    assert.equal(nics.length, 500);
    assert.equal(new Set(nics.map((n) => n.ip)).size, 500, 'no duplicate IP');
    assert.equal(new Set(nics.map((n) => n.mac)).size, 500, 'no duplicate MAC');
    // every host's DHCP serves exactly the NICs of the VMs on it (coalesced, versioned syncs)
    for (const h of env.hosts)
      assert.deepEqual(
        await dhcpNicsOn(t, h),
        nics
          .filter((n) => n.hostUuid === h)
          .map((n) => n.uuid)
          .sort(),
        `DHCP of host ${h}`,
      );
    await assertInvariants(t.db.db);
  });

  test('creates racing for little room: exactly as many as fit succeed, the rest explain why', async () => {
    const tight = await buildVmEnv(t, { hosts: 2, prefix: 'tight', hostCpu: 8, hostMemory: 16 * GiB });
    // 16 GiB − 1 GiB reserved per host: three 4 GiB VMs fit on each, six in all
    const accepted = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        t.admin.post('/v1/vms', {
          name: `tight-${i}`,
          imageUuid: tight.image,
          instanceOfferingUuid: tight.medium,
          clusterUuid: tight.cluster,
        }),
      ),
    );
    const jobs = await finished(accepted.map((r) => r.body.uuid));
    const ok = jobs.filter((j) => j.state === 'Succeeded');
    assert.equal(ok.length, 6, JSON.stringify(jobs.filter((j) => j.state !== 'Succeeded').slice(0, 2)));
    for (const j of jobs.filter((x) => x.state === 'Failed')) {
      assert.equal(j.error.code, 'NO_HOST_AVAILABLE');
      assert.match(j.error.message, /memory|taken by concurrent placements/, JSON.stringify(j.error));
    }
    const gone = await t.db.db.selectFrom('vms').select('uuid').where('name', 'like', 'tight-%').execute();
    assert.equal(gone.length, 6, 'failed creates left no VM behind');
    await assertInvariants(t.db.db);
  });
});

describe('quota under concurrency', () => {
  test('200 concurrent creates against vm.num = 10 admit exactly 10', async () => {
    const env = await buildVmEnv(t, { hosts: 2, prefix: 'quota' });
    const acct = await t.admin.job('POST', '/v1/accounts', {
      name: 'quota-tenant',
      password: 'tenant-password',
    });
    const tenant = await t.anon.login('quota-tenant', 'tenant-password');
    await t.db.db
      .insertInto('quotas')
      .values({ accountUuid: acct.resourceUuid, name: 'vm.num', limitValue: 10 })
      .onConflict((oc) => oc.columns(['accountUuid', 'name']).doUpdateSet({ limitValue: 10 }))
      .execute();
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        tenant.post('/v1/vms', { name: `q-${i}`, imageUuid: env.image, instanceOfferingUuid: env.small }),
      ),
    );
    const accepted = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status === 409);
    assert.equal(accepted.length, 10);
    assert.equal(refused.length, 190);
    for (const r of refused) assert.equal(r.body.error.code, 'QUOTA_EXCEEDED');
    const jobs = await finished(accepted.map((r) => r.body.uuid));
    assert.ok(jobs.every((j) => j.state === 'Succeeded'));
    const used = await t.db.db
      .selectFrom('quotas')
      .select(['name', 'used'])
      .where('accountUuid', '=', acct.resourceUuid)
      .orderBy('name')
      .execute();
    const by = Object.fromEntries(used.map((u) => [u.name, u.used]));
    assert.equal(by['vm.num'], 10);
    assert.equal(by['vm.cpu'], 10);
    assert.equal(by['vm.memory'], 10 * GiB);
    const vms = await tenant.get('/v1/vms?count=true&limit=0');
    assert.equal(vms.body.total, 10);
    await assertInvariants(t.db.db);
  });
});
