/**
 * The CLI end to end against a real node: the walk-through of the quick start (login, list the
 * demo-like environment, add a host with --wait, a failing add rolled back), run as a child process.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { cliRunner } from '../support/cli.js';
import { ADMIN_PASSWORD, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv } from './vm-env.js';

describe('nimbus CLI against a real node', () => {
  let t: TestNode;
  const { profile, run } = cliRunner();

  before(async () => {
    t = await startTestNode();
    await buildVmEnv(t, { hosts: 4, prefix: 'demo' });
  });
  after(() => t.stop());

  test('login stores a private profile', async () => {
    const bad = await run(['login', '--url', t.url, '--account', 'admin', '--password', 'wrong']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /LOGIN_FAILED/);
    const ok = await run(['login', '--url', t.url, '--account', 'admin', '--password', ADMIN_PASSWORD]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(statSync(profile).mode & 0o777, 0o600);
  });

  test('zone list and host list -o json show the environment', async () => {
    const zones = await run(['zone', 'list']);
    assert.equal(zones.code, 0, zones.stderr);
    assert.match(zones.stdout, /demo-zone/);
    const hosts = await run(['host', 'list', '-o', 'json']);
    assert.equal(hosts.code, 0, hosts.stderr);
    const page = JSON.parse(hosts.stdout);
    assert.equal(page.items.length, 4);
    assert.ok(page.items.every((h: { status: string }) => h.status === 'Connected'));
    const filtered = await run([
      'host',
      'list',
      '--q',
      'cluster.zone.name=demo-zone',
      '--q',
      'name~=demo-host-%',
      '--sort',
      '-name',
      '-o',
      'json',
    ]);
    assert.equal(JSON.parse(filtered.stdout).items[0].name, 'demo-host-3');
  });

  test('host create --wait adds a host, resolving the cluster by name', async () => {
    const res = await run([
      'host',
      'create',
      '--name',
      'cli-host',
      '--cluster',
      'demo-cluster',
      '--management-ip',
      '10.9.9.9',
      '--simulator-memory',
      '64G',
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const host = JSON.parse(res.stdout);
    assert.equal(host.status, 'Connected');
    assert.equal(host.memoryTotal, 64 * 1024 ** 3);
    const got = await run(['host', 'get', 'cli-host', '-o', 'json']);
    assert.equal(JSON.parse(got.stdout).managementIp, '10.9.9.9');
  });

  test('with a fault on the connect step the job fails with a clear error and the host is rolled back', async () => {
    const fault = await t.admin.post('/v1/simulator/faults', {
      point: 'command:host.connect',
      error: { code: 'HOST_CONNECT_REFUSED', message: 'connection refused by 10.9.9.10' },
    });
    assert.equal(fault.status, 201);
    try {
      const res = await run([
        'host',
        'create',
        '--name',
        'doomed',
        '--cluster',
        'demo-cluster',
        '--management-ip',
        '10.9.9.10',
        '--wait',
      ]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /HOST_CONNECT_REFUSED/);
      assert.match(res.stderr, /connection refused by 10\.9\.9\.10/);
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
    const left = await run(['host', 'list', '--q', 'name=doomed', '--count', '-o', 'json']);
    assert.equal(JSON.parse(left.stdout).total, 0);
  });

  test('bad input names the field; actions and tags work', async () => {
    const bad = await run([
      'host',
      'create',
      '--name',
      'x',
      '--cluster',
      'demo-cluster',
      '--management-ip',
      'not-an-ip',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /managementIp/);
    assert.equal((await run(['host', 'disable', 'cli-host', '--wait'])).code, 0);
    assert.equal((await run(['host', 'tag', 'cli-host', 'env=prod', '--wait'])).code, 0);
    const tagged = await run(['host', 'list', '--q', 'tag=env=prod', '-o', 'json']);
    const items = JSON.parse(tagged.stdout).items;
    assert.equal(items.length, 1);
    assert.equal(items[0].state, 'Disabled');
  });

  test('vm create --image <name> --offering <name> --wait gives a Running VM (the issue’s walk-through)', async () => {
    const res = await run([
      'vm',
      'create',
      '--name',
      'web1',
      '--image',
      'demo-image',
      '--offering',
      'demo-small',
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const vm = JSON.parse(res.stdout);
    assert.equal(vm.state, 'Running');
    assert.equal(vm.cpu, 1);
    const both = await run([
      'vm',
      'create',
      '--name',
      'web2',
      '--image',
      'demo-image',
      '--offering',
      'demo-small',
      '--instance-offering',
      'demo-small',
    ]);
    assert.equal(both.code, 2, 'the flag and its alias together are a usage error');
  });
});
