/**
 * The quick start with networking: on the demo environment (src/demo.ts), the README's
 * `nimbus vm create --name web1 --image ubuntu-22.04 --offering small --l3 public --wait` gives
 * the VM an address of the public network at once, served by its host's DHCP; `--l3` names are
 * resolved like every other reference and may be repeated (one NIC each, in order).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { createDemoEnvironment } from '../../src/demo.js';
import { cliRunner } from '../support/cli.js';
import { ADMIN_PASSWORD, startTestNode, type TestNode } from '../support/node.js';
import { addL3, dhcpNicsOn, nicsOf } from './network-fixtures.js';

describe('the demo network through the CLI', () => {
  let t: TestNode;
  const { run } = cliRunner();

  before(async () => {
    t = await startTestNode();
    const admin = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('type', '=', 'admin')
      .executeTakeFirstOrThrow();
    assert.ok(
      await createDemoEnvironment(
        t.node.services,
        t.node.kindServices,
        admin.uuid,
        pino({ level: 'silent' }),
      ),
    );
    const login = await run(['login', '--url', t.url, '--account', 'admin', '--password', ADMIN_PASSWORD]);
    assert.equal(login.code, 0, login.stderr);
  });
  after(() => t.stop());

  test('vm create --l3 public --wait: the VM runs with an address of the public range', async () => {
    const r = await run([
      'vm',
      'create',
      '--name',
      'web1',
      '--image',
      'ubuntu-22.04',
      '--offering',
      'small',
      '--l3',
      'public',
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const vm = JSON.parse(r.stdout);
    assert.equal(vm.state, 'Running');
    const [nic] = await nicsOf(t, vm.uuid);
    assert.match(nic?.ip ?? '', /^192\.168\.100\.(1\d\d|2[0-4]\d|250)$/);
    assert.ok((await dhcpNicsOn(t, vm.hostUuid)).includes(nic!.uuid));
    const listed = await run(['vm-nic', 'list', '--q', `vmUuid=${vm.uuid}`, '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).items[0].ip, nic!.ip);
  });

  test('--l3 repeated: one NIC per network, in the order given', async () => {
    const l2 = await t.db.db
      .selectFrom('l2Networks')
      .select('uuid')
      .where('name', '=', 'l2-public')
      .executeTakeFirstOrThrow();
    await addL3(t, l2.uuid, { name: 'backend' });
    const r = await run([
      'vm',
      'create',
      '--name',
      'web2',
      '--image',
      'ubuntu-22.04',
      '--offering',
      'small',
      '--l3',
      'backend',
      '--l3',
      'public',
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const nics = await nicsOf(t, JSON.parse(r.stdout).uuid);
    const names = await Promise.all(
      nics.map(
        async (n) =>
          (
            await t.db.db
              .selectFrom('l3Networks')
              .select('name')
              .where('uuid', '=', n.l3NetworkUuid)
              .executeTakeFirstOrThrow()
          ).name,
      ),
    );
    assert.deepEqual(names, ['backend', 'public']);
    const unknown = await run([
      'vm',
      'create',
      '--name',
      'web3',
      '--image',
      'ubuntu-22.04',
      '--offering',
      'small',
      '--l3',
      'nowhere',
    ]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no L3 network named 'nowhere'/);
  });
});
