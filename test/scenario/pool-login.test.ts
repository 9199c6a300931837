/**
 * A handed-out pool VM's login, floating IP and notifications, on simulated hosts through the
 * API: the warm VMs get their pool's bootstrap; an allocation with an SSH key or a generated
 * password restarts the VM with user-data carrying the key or the password's hash (never the
 * clear text, which only the allocate answer shows) under a new instance id; a pool with a
 * floating L3 gives each VM an EIP the router maps, released when the lease ends; the lease
 * clock's events reach the holder's webhook, signed, and no one else's; bad input is refused
 * naming the field, changing nothing.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RouterConfig } from '../../src/contract/agent.js';
import { sha512Crypt } from '../../src/kernel/sha512-crypt.js';
import { verifySignature } from '../../src/resources/operations/webhook/signature.js';
import type { LeaseService } from '../../src/resources/self-service/lease/service.js';
import { cliRunner } from '../support/cli.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { type Receiver, startReceiver } from '../support/webhook-receiver.js';
import { until } from './pool-fixtures.js';
import { buildRouterEnv, type RouterEnv, refused, succeed, tenant, vrL3 } from './router-fixtures.js';

let t: TestNode;
let env: RouterEnv;
let rx: Receiver;
let dev: { api: Api; uuid: string };
let other: { api: Api; uuid: string };
let l3: string;
let pool: string;

const DAY = 24 * 3600;
const BOOTSTRAP = '#!/bin/sh\necho redis-ready > /etc/motd\n';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKwU4hg5pkxAG7Dc1X5RRAbA7BbMsgfYfWk62YRKWgXU dev@laptop';
const SECRET = 'pool-login-test-secret-0123456789';

const leases = () => t.node.kindServices.find((s) => s.contract.kind === 'leases') as unknown as LeaseService;
const simVm = (uuid: string) =>
  t.db.db.selectFrom('simulatorVms').selectAll().where('vmUuid', '=', uuid).executeTakeFirstOrThrow();
const ready = () =>
  t.db.db
    .selectFrom('poolVms')
    .select('vmUuid')
    .where('poolUuid', '=', pool)
    .where('state', '=', 'Ready')
    .execute();

async function routerEips(): Promise<RouterConfig['eips']> {
  const r = await t.db.db
    .selectFrom('virtualRouters')
    .select('uuid')
    .where('l3NetworkUuid', '=', l3)
    .executeTakeFirst();
  return (r ? t.node.services.deps.simulator.networks.router(r.uuid)?.state.eips : undefined) ?? [];
}

before(async () => {
  t = await startTestNode({ settings: { poolStockIntervalSeconds: 1, webhookDeliveryIntervalSeconds: 1 } });
  env = await buildRouterEnv(t, { prefix: 'login', hosts: 2 });
  ({ l3 } = await vrL3(env, t.admin, 'pool-net'));
  dev = await tenant(t, 'dev');
  other = await tenant(t, 'other');
  rx = await startReceiver();
  pool = (
    await succeed(t.admin, 'POST', '/v1/pools', {
      name: 'redis',
      imageUuid: env.image,
      instanceOfferingUuid: env.small,
      l3NetworkUuids: [l3],
      floatingL3NetworkUuid: env.publicL3,
      userData: BOOTSTRAP,
      loginUser: 'redis',
      warmTarget: 2,
      cap: 6,
      perUserLimit: 5,
      shared: true,
      defaultLeaseSeconds: DAY,
      // a hand-out waits for the refill rather than failing: the tests take VMs faster than it makes them
      emptyPolicy: 'wait',
      waitSeconds: 90,
    })
  ).resourceUuid;
  await until('2 ready VMs', ready, (r) => r.length === 2, 120_000);
});

after(async () => {
  await t?.stop();
  await rx?.close();
});

describe('the login of a handed-out pool VM', () => {
  test('warm VMs boot with their pool’s bootstrap as their user-data, under their own instance id', async () => {
    for (const { vmUuid } of await ready()) {
      const sim = await simVm(vmUuid);
      assert.equal(sim.userData, BOOTSTRAP);
      assert.equal(sim.instanceId, null, 'the VM’s own uuid');
    }
  });

  test('an SSH key: the VM restarts with user-data carrying the key for the pool’s login user, under the lease’s instance id', async () => {
    const job = await succeed(dev.api, 'POST', `/v1/pools/${pool}/actions/allocate`, { sshKey: KEY });
    assert.equal(job.kind, 'lease.allocate');
    const lease = job.result;
    assert.equal(lease.loginMethod, 'ssh-key');
    assert.equal(lease.loginUser, 'redis');
    assert.equal(lease.loginState, 'Delivered');
    assert.equal(lease.vm.state, 'Running');
    assert.equal(job.secrets, undefined, 'no password asked, none shown');
    const sim = await simVm(lease.vm.uuid);
    assert.equal(sim.state, 'Running');
    assert.equal(sim.instanceId, lease.uuid, 'a new instance: cloud-init applies the user-data again');
    assert.match(sim.userData!, /^Content-Type: multipart\/mixed/);
    assert.ok(sim.userData!.includes(`      - "${KEY}"`), sim.userData!);
    assert.ok(sim.userData!.includes('  - name: "redis"'));
    assert.ok(
      sim.userData!.includes(`text/x-shellscript-per-once; charset="utf-8"`),
      'the bootstrap, once per VM',
    );
    assert.ok(sim.userData!.includes(BOOTSTRAP));
    assert.doesNotMatch(sim.userData!, /hashed_passwd|ssh_pwauth/);
    // the VM was stopped and started again by the hand-out, as the holder's
    const ops = await t.db.db
      .selectFrom('jobs')
      .select('kind')
      .where('resourceUuid', '=', lease.vm.uuid)
      .where('requestId', '=', `lease-login-${lease.uuid}`)
      .orderBy('createdAt')
      .execute();
    assert.deepEqual(
      ops.map((o) => o.kind),
      ['vm.stop', 'vm.start'],
    );
  });

  test('a password: shown once in the answer; the guest gets only its SHA-512-crypt hash; stored, logged and evented nowhere', async () => {
    const res = await dev.api.call('POST', `/v1/pools/${pool}/actions/allocate?wait=true`, {
      password: true,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'Succeeded', JSON.stringify(res.body));
    const password = res.body.secrets?.password as string;
    assert.match(password, /^[A-Za-z0-9]{20}$/);
    const lease = res.body.result;
    assert.equal(lease.loginMethod, 'password');
    const sim = await simVm(lease.vm.uuid);
    const hash = /hashed_passwd: "(\$6\$[^$]+\$[^"]+)"/.exec(sim.userData!)?.[1];
    assert.ok(hash, sim.userData!);
    assert.equal(sha512Crypt(password, hash.split('$')[2]!), hash, 'the hash is of the password shown');
    assert.match(sim.userData!, /ssh_pwauth: true/);
    assert.match(sim.userData!, /lock_passwd: false/);
    // the clear text is nowhere: not the job (read again), its row, any event, the lease or the guest's config
    const again = await dev.api.get(`/v1/jobs/${res.body.uuid}`);
    assert.equal(again.body.secrets, undefined);
    assert.ok(!JSON.stringify(again.body).includes(password));
    const like = `%${password}%`;
    const found = await t.db.db
      .selectFrom('jobs')
      .select('uuid')
      .where((eb) =>
        eb.or([
          eb(eb.cast('params', 'text'), 'like', like),
          eb(eb.cast('result', 'text'), 'like', like),
          eb(eb.cast('flow', 'text'), 'like', like),
        ]),
      )
      .execute();
    assert.equal(found.length, 0, 'no job row holds it');
    const events = await t.db.db
      .selectFrom('events')
      .select('id')
      .where((eb) => eb(eb.cast('data', 'text'), 'like', like))
      .execute();
    assert.equal(events.length, 0, 'no event holds it');
    assert.ok(!sim.userData!.includes(password));
    const guest = await t.db.db
      .selectFrom('vmGuestConfigs')
      .select('userData')
      .where('vmUuid', '=', lease.vm.uuid)
      .executeTakeFirstOrThrow();
    assert.ok(!guest.userData!.includes(password));
  });

  test('bad input is refused naming the field and changes nothing', async () => {
    const before = await t.db.db.selectFrom('leases').select('uuid').execute();
    const readyBefore = (await ready()).length;
    for (const sshKey of [
      'ssh-rsa AAAA-not-base64',
      'ssh-dss AAAAB3NzaC1kc3M=',
      KEY.replace('ssh-ed25519', 'ssh-rsa'),
    ]) {
      const err = await refused(dev.api, 'POST', `/v1/pools/${pool}/actions/allocate`, { sshKey }, 400);
      assert.equal(err.code, 'INVALID_SSH_KEY');
      assert.deepEqual(
        (err.details!.fields as Array<{ field: string }>).map((f) => f.field),
        ['sshKey'],
      );
    }
    const notBool = await refused(
      dev.api,
      'POST',
      `/v1/pools/${pool}/actions/allocate`,
      { password: 'yes' },
      400,
    );
    assert.match(JSON.stringify(notBool), /password/);
    assert.equal((await t.db.db.selectFrom('leases').select('uuid').execute()).length, before.length);
    assert.equal((await ready()).length, readyBefore);
    // a floating L3 that is not public; a floating IP for VMs whose network has no virtual router
    const flat = await t.db.db
      .selectFrom('l3Networks')
      .select('uuid')
      .where('uuid', '=', env.managementL3)
      .executeTakeFirstOrThrow();
    const err = await refused(
      t.admin,
      'POST',
      '/v1/pools',
      {
        name: 'bad-fip',
        imageUuid: env.image,
        instanceOfferingUuid: env.small,
        l3NetworkUuids: [l3],
        floatingL3NetworkUuid: flat.uuid,
        warmTarget: 0,
        cap: 1,
      },
      400,
    );
    assert.deepEqual(
      (err.details!.fields as Array<{ field: string }>).map((f) => f.field),
      ['floatingL3NetworkUuid'],
    );
    const flatVms = await refused(
      t.admin,
      'POST',
      '/v1/pools',
      {
        name: 'bad-fip-2',
        imageUuid: env.image,
        instanceOfferingUuid: env.small,
        l3NetworkUuids: [env.publicL3],
        floatingL3NetworkUuid: env.publicL3,
        warmTarget: 0,
        cap: 1,
      },
      400,
    );
    assert.deepEqual(
      (flatVms.details!.fields as Array<{ field: string; problem: string }>).map((f) => f.field),
      ['l3NetworkUuids'],
    );
    assert.match(flatVms.message, /virtual router/);
    assert.equal((await t.admin.get('/v1/pools?q=name~=bad-fip')).body.items.length, 0);
  });
});

describe('a floating IP per pool, and the lease’s events on a webhook', () => {
  test('each VM handed out gets an EIP the router maps; at the lease’s end it is released; the holder’s webhook hears the lease clock, signed; another account’s does not', async () => {
    const mine = await succeed(dev.api, 'POST', '/v1/webhooks', {
      name: 'my-leases',
      url: rx.url('/dev'),
      eventTypes: ['lease.expiring', 'lease.reclaimed', 'lease.stopped'],
      secret: SECRET,
    });
    await succeed(other.api, 'POST', '/v1/webhooks', {
      name: 'theirs',
      url: rx.url('/other'),
      eventTypes: ['lease.*'],
      secret: SECRET,
    });

    const job = await succeed(dev.api, 'POST', `/v1/pools/${pool}/actions/allocate`, {});
    const lease = job.result;
    assert.match(lease.floatingIp, /^172\./, JSON.stringify(lease));
    assert.equal(lease.loginState, null, 'no login asked: no restart');
    const eips = (await dev.api.get(`/v1/eips?q=ip=${lease.floatingIp}`)).body.items;
    assert.equal(eips.length, 1, 'the EIP is the holder’s');
    assert.equal(eips[0].guestIp, lease.vm.ips[0]);
    assert.deepEqual(
      (await routerEips()).filter((e) => e.publicIp === lease.floatingIp),
      [{ eipUuid: eips[0].uuid, publicIp: lease.floatingIp, guestIp: lease.vm.ips[0] }],
    );

    // the lease clock: notice, then expiry (ordinary: reclaimed)
    const start = Date.now();
    await leases().scan(new Date(start + (DAY - 3600) * 1000), true);
    await leases().scan(new Date(start + DAY * 1000 + 60_000), true);
    const got = await until(
      'the two lease events at the webhook',
      async () => rx.received('/dev').filter((r) => JSON.parse(r.body).resourceUuid === lease.uuid),
      (r) => r.length === 2,
      30_000,
    );
    assert.deepEqual(
      got.map((r) => JSON.parse(r.body).type),
      ['lease.expiring', 'lease.reclaimed'],
    );
    for (const r of got)
      assert.equal(verifySignature(SECRET, r.headers['nimbus-signature'] as string, r.body), true);
    assert.equal(
      rx.received('/other').filter((r) => JSON.parse(r.body).accountUuid === dev.uuid).length,
      0,
      'another account’s webhook hears none of it',
    );
    const log = (
      await dev.api.get(`/v1/webhook-deliveries?q=webhookUuid=${mine.resourceUuid}&q=state=Succeeded`)
    ).body;
    assert.ok(log.items.length >= 2);

    // released with the lease: the rows, the address, the router's mapping
    assert.equal((await dev.api.get(`/v1/eips/${eips[0].uuid}`)).status, 404);
    const vip = await t.db.db.selectFrom('vips').select('uuid').where('ip', '=', lease.floatingIp).execute();
    assert.equal(vip.length, 0);
    const addr = await t.db.db
      .selectFrom('ipAddresses')
      .select('uuid')
      .where('l3NetworkUuid', '=', env.publicL3)
      .where('ip', '=', lease.floatingIp)
      .execute();
    assert.equal(addr.length, 0, 'the address is back in the public range');
    assert.equal((await routerEips()).filter((e) => e.publicIp === lease.floatingIp).length, 0);
    const ended = (await dev.api.get(`/v1/leases/${lease.uuid}`)).body;
    assert.equal(ended.state, 'Ended');
    assert.equal(ended.floatingIp, lease.floatingIp, 'the lease remembers which it had');
  });

  test('a released lease gives its floating IP back at once', async () => {
    const job = await succeed(dev.api, 'POST', `/v1/pools/${pool}/actions/allocate`, {});
    const ip = job.result.floatingIp as string;
    assert.ok(ip);
    await succeed(dev.api, 'POST', `/v1/leases/${job.resourceUuid}/actions/release`, {});
    assert.equal((await dev.api.get(`/v1/eips?q=ip=${ip}`)).body.items.length, 0);
    assert.equal((await routerEips()).filter((e) => e.publicIp === ip).length, 0);
  });
});

describe('a hand-over that fails is undone', () => {
  test('a login that cannot be delivered ends the lease (allocation-failed): the VM, its floating IP and the quota go back', async () => {
    const quota = () =>
      t.db.db
        .selectFrom('quotas')
        .select('used')
        .where('accountUuid', '=', dev.uuid)
        .where('name', '=', 'vm.num')
        .executeTakeFirstOrThrow()
        .then((r) => Number(r.used));
    // the leases the clock ended above are still giving their VMs back: let them finish first
    await until(
      'the pool to have nothing going',
      () =>
        t.db.db
          .selectFrom('poolVms')
          .select('vmUuid')
          .where('poolUuid', '=', pool)
          .where('state', '=', 'Discarding')
          .execute(),
      (rows) => rows.length === 0,
    );
    const usedBefore = await quota();
    const res = await t.admin.post('/v1/simulator/faults', {
      point: 'step:lease.allocate/deliver-login',
      times: 1,
      error: { code: 'GUEST_SAID_NO' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const job = await dev.api.job('POST', `/v1/pools/${pool}/actions/allocate`, { sshKey: KEY });
    assert.equal(job.state, 'Failed', JSON.stringify(job));
    assert.equal(job.error.code, 'GUEST_SAID_NO');
    const lease = (await dev.api.get(`/v1/leases/${job.resourceUuid}`)).body;
    assert.equal(lease.state, 'Ended');
    assert.equal(lease.endReason, 'allocation-failed');
    assert.ok(lease.floatingIp, 'it had a floating IP');
    assert.equal((await dev.api.get(`/v1/eips?q=ip=${lease.floatingIp}`)).body.items.length, 0, 'released');
    assert.equal((await routerEips()).filter((e) => e.publicIp === lease.floatingIp).length, 0);
    // the VM goes back to the pool: destroyed, expunged, the holder's quota returned
    await until(
      'the VM expunged',
      () => t.db.db.selectFrom('vms').select('uuid').where('uuid', '=', lease.vmUuid).execute(),
      (rows) => rows.length === 0,
    );
    assert.equal(await quota(), usedBefore);
  });
});

describe('the CLI', () => {
  test('nimbus webhook create/list/deliveries/delete; nimbus pool allocate --ssh-key @file | --password', async () => {
    const cli = cliRunner();
    const login = await cli.run(['login', '--url', t.url, '--account', 'dev', '--password', 'dev-password']);
    assert.equal(login.code, 0, login.stderr);

    const made = await cli.run([
      'webhook',
      'create',
      '--name',
      'cli-hook',
      '--url',
      rx.url('/cli'),
      '--event-types',
      'lease.created,lease.released',
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const secret = /secret: (\S+) {2}\(shown once/.exec(made.stderr)?.[1];
    assert.ok(secret, `the generated secret is shown once, on stderr: ${made.stderr}`);
    assert.ok(!made.stdout.includes(secret), 'and not in the resource printed');
    const listed = await cli.run(['webhook', 'list', '-o', 'json']);
    assert.ok(JSON.parse(listed.stdout).items.some((w: any) => w.name === 'cli-hook'));

    const keyFile = join(tmpdir(), `nimbus-key-${process.pid}.pub`);
    writeFileSync(keyFile, `${KEY}\n`);
    const withKey = await cli.run([
      'pool',
      'allocate',
      'redis',
      '--ssh-key',
      `@${keyFile}`,
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(withKey.code, 0, withKey.stderr);
    const keyed = JSON.parse(withKey.stdout);
    assert.equal(keyed.loginState, 'Delivered', withKey.stdout);
    assert.ok((await simVm(keyed.vmUuid)).userData!.includes(KEY), 'the file’s key reached the host');
    const missing = await cli.run(['pool', 'allocate', 'redis', '--ssh-key', '@/no/such/key.pub']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /cannot read \/no\/such\/key\.pub: ENOENT/);

    const withPassword = await cli.run(['pool', 'allocate', 'redis', '--password', '--wait', '-o', 'json']);
    assert.equal(withPassword.code, 0, withPassword.stderr);
    const password = /password: (\S+) {2}\(shown once/.exec(withPassword.stderr)?.[1];
    assert.ok(password, withPassword.stderr);
    const lease = JSON.parse(withPassword.stdout);
    const hash = /hashed_passwd: "(\$6\$[^$]+\$[^"]+)"/.exec((await simVm(lease.vmUuid)).userData!)?.[1];
    assert.equal(sha512Crypt(password, hash!.split('$')[2]!), hash);

    await until(
      'the CLI’s allocations at its webhook',
      async () => rx.received('/cli').length,
      (n) => n >= 2,
      30_000,
    );
    const log = await cli.run(['webhook', 'deliveries', 'cli-hook', '--state', 'Succeeded', '-o', 'json']);
    assert.equal(log.code, 0, log.stderr);
    assert.ok(
      JSON.parse(log.stdout).items.every(
        (d: any) => d.state === 'Succeeded' && d.eventType === 'lease.created',
      ),
    );
    const gone = await cli.run(['webhook', 'delete', 'cli-hook', '--wait']);
    assert.equal(gone.code, 0, gone.stderr);
  });
});
