/**
 * What people read from the CLI on a real node (issue 8, items 10 and 11): `vm list` shows each
 * VM's host, addresses, image and offering by name and hides appliance VMs unless asked; an admin
 * sees the owning account and filters by it; `get` names references; `--wait` prints what `get`
 * prints; `-f value|csv` and `-c` for scripts; `--wait --timeout`; `quota set`; `event tail`;
 * a NIC named by its VM or its address.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { createDemoEnvironment } from '../../src/demo.js';
import { cliRunner } from '../support/cli.js';
import { ADMIN_PASSWORD, startTestNode, type TestNode } from '../support/node.js';

describe('the CLI shows names, not uuids (real node, demo environment)', () => {
  let t: TestNode;
  const admin = cliRunner();
  const tenant = cliRunner();
  const ok = async (runner: typeof admin, args: string[]) => {
    const r = await runner.run(args);
    assert.equal(r.code, 0, `nimbus ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    t = await startTestNode();
    const acc = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('type', '=', 'admin')
      .executeTakeFirstOrThrow();
    assert.ok(
      await createDemoEnvironment(t.node.services, t.node.kindServices, acc.uuid, pino({ level: 'silent' })),
    );
    await ok(admin, ['login', '--url', t.url, '--account', 'admin', '--password', ADMIN_PASSWORD]);
    const vm = ['--image', 'ubuntu-22.04', '--offering', 'small', '--wait', '-f', 'json'];
    await ok(admin, ['vm', 'create', '--name', 'web1', '--l3', 'public', ...vm]);
    await ok(admin, [
      'l3-network',
      'create',
      '--name',
      'priv',
      '--l2-network',
      'l2-vlan100',
      '--category',
      'private',
      '--provider',
      'virtual-router',
      '--wait',
    ]);
    await ok(admin, [
      'ip-range',
      'create',
      '--name',
      'priv-r',
      '--l3-network',
      'priv',
      '--cidr',
      '10.20.0.0/24',
      '--wait',
    ]);
    await ok(admin, ['vm', 'create', '--name', 'app', '--l3', 'priv', ...vm]);
    await ok(admin, ['account', 'create', '--name', 'acme', '--password', 'acme-secret-1', '--wait']);
    await ok(tenant, ['login', '--url', t.url, '--account', 'acme', '--password', 'acme-secret-1']);
    await ok(tenant, ['vm', 'create', '--name', 'tvm', '--l3', 'public', ...vm]);
  });
  after(() => t.stop());

  test('vm list: host, addresses, image and offering by name; appliances only on request', async () => {
    const csv = (await ok(admin, ['vm', 'list', '-f', 'csv'])).trim().split('\n');
    assert.deepEqual(csv[0]?.split(','), [
      'uuid',
      'name',
      'account',
      'state',
      'host',
      'ips',
      'image',
      'instanceOffering',
      'tags',
    ]);
    const web1 = csv.find((l) => l.split(',')[1] === 'web1')?.split(',') ?? [];
    assert.equal(web1[2], 'admin');
    assert.equal(web1[3], 'Running');
    assert.match(web1[4] ?? '', /^host-\d$/);
    assert.match(web1[5] ?? '', /^192\.168\.100\.\d+$/);
    assert.deepEqual(web1.slice(6, 8), ['ubuntu-22.04', 'small']);
    // the demo pool's warm VMs (dev-small-…) are the admin's VMs too; they come and go
    const names = (text: string) =>
      text
        .trim()
        .split('\n')
        .filter((n) => !n.startsWith('dev-small-'))
        .sort();
    assert.deepEqual(names(await ok(admin, ['vm', 'list', '-f', 'value', '-c', 'name'])), [
      'app',
      'tvm',
      'web1',
    ]);
    const all = names(await ok(admin, ['vm', 'list', '--appliances', '-f', 'value', '-c', 'name']));
    assert.equal(all.length, 4, 'the router’s VM is listed with --appliances');
  });

  test('an admin filters by account; a tenant sees its own, without an account column', async () => {
    assert.equal(
      (await ok(admin, ['vm', 'list', '--account', 'acme', '-f', 'value', '-c', 'name'])).trim(),
      'tvm',
    );
    const mine = await ok(tenant, ['vm', 'list', '-f', 'csv']);
    assert.doesNotMatch(mine.split('\n')[0] ?? '', /account/);
    assert.match(mine, /tvm/);
  });

  test('get names its references; --wait prints what get prints, in the same order', async () => {
    const got = await ok(admin, ['vm', 'get', 'web1']);
    assert.match(got, /hostUuid\s+│ host-\d \([0-9a-f-]{36}\)/);
    assert.match(got, /ips\s+│ 192\.168\.100\.\d+/);
    const fields = await ok(admin, ['vm', 'get', 'web1', '--fields', 'name,state', '-f', 'value']);
    assert.equal(fields, 'web1\nRunning\n');
    const waited = JSON.parse(await ok(admin, ['vm', 'reboot', 'web1', '--wait', '-f', 'json']));
    const fetched = JSON.parse(await ok(admin, ['vm', 'get', 'web1', '-f', 'json']));
    assert.deepEqual(Object.keys(waited), Object.keys(fetched));
    assert.equal(waited.uuid, fetched.uuid);
  });

  test('a NIC is named by its VM or its address', async () => {
    const ip = (await ok(admin, ['vm-nic', 'list', '--q', 'vm.name=app', '-f', 'value', '-c', 'ip'])).trim();
    await ok(admin, ['vip', 'create', '--name', 'v1', '--l3', 'public', '--wait']);
    const eip = JSON.parse(
      await ok(admin, [
        'eip',
        'create',
        '--name',
        'e1',
        '--vip',
        'v1',
        '--vm-nic',
        'app',
        '--wait',
        '-f',
        'json',
      ]),
    );
    assert.equal(eip.guestIp, ip);
    await ok(admin, ['security-group', 'create', '--name', 'sg', '--wait']);
    await ok(admin, ['security-group', 'add-nics', 'sg', '--vm-nic', ip, '--wait']);
    const nic = await ok(admin, ['vm-nic', 'list', '--q', 'vm.name=app', '-f', 'json']);
    assert.equal(JSON.parse(nic).items[0].securityGroupUuids.length, 1);
  });

  test('--wait --timeout gives up (exit 1) and the job goes on', async () => {
    const fault = await t.admin.post('/v1/simulator/faults', {
      point: 'step:vm.create/allocate-host',
      delayMs: 4000,
      times: 1,
    });
    assert.ok(fault.status < 300, JSON.stringify(fault.body));
    const r = await admin.run([
      'vm',
      'create',
      '--name',
      'slow',
      '--image',
      'ubuntu-22.04',
      '--offering',
      'small',
      '--wait',
      '--timeout',
      '1',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /error WAIT_TIMEOUT: job [0-9a-f-]{36} still \w+ after 1 s; it goes on: nimbus job wait/,
    );
    const job = /job ([0-9a-f-]{36})/.exec(r.stderr)?.[1] ?? '';
    await ok(admin, ['job', 'wait', job, '--timeout', '60']);
  });

  test('quota set takes names and sizes; quota list shows sizes in binary units', async () => {
    await ok(admin, ['quota', 'set', 'acme', 'vm.num=7', 'vm.memory=16G', '--wait']);
    const rows = JSON.parse(await ok(admin, ['quota', 'list', '--account', 'acme', '-f', 'json'])).items;
    const limit = (n: string) => rows.find((r: { name: string }) => r.name === n)?.limit;
    assert.equal(limit('vm.num'), 7);
    assert.equal(limit('vm.memory'), 16 * 1024 ** 3);
    assert.match(await ok(admin, ['quota', 'list', '--account', 'acme']), /vm\.memory\s+│[^│]+│\s+16 GiB/);
    const bad = await admin.run(['quota', 'set', 'acme', 'vm.bogus=1', 'vm.num=x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /'vm\.bogus' is not a quota.*vm\.num: expected an integer/);
  });

  test('event tail replays and follows the stream, a line per event', async () => {
    const out = await ok(admin, ['event', 'tail', '--after', '0', '--type', 'vm', '--max-events', '2']);
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const l of lines) assert.match(l, /^\d\d:\d\d:\d\d vm\.\S+ vms \S+/);
  });
});
