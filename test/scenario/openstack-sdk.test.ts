/**
 * The openstacksdk path (Debian python3-openstacksdk): one Python process authenticates through
 * Keystone, uploads an image, picks a flavor, makes a keypair, creates a server and waits for
 * ACTIVE, stops and starts it, deletes it and waits for it to be gone (openstack-sdk.py). The
 * test checks what the SDK saw and that Nimbus holds the same (then nothing).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type OpenStackNode, startOpenStackNode, TENANT, until } from './openstack-fixtures.js';

const run = promisify(execFile);
// Debian's interpreter, where python3-openstacksdk lives (a python3 earlier on PATH may be another)
const PYTHON = '/usr/bin/python3';
const hasSdk = await run(PYTHON, ['-c', 'import openstack']).then(
  () => true,
  () => false,
);
// the script sits beside this test's source (dist/test/scenario → test/scenario)
const script = fileURLToPath(new URL('../../../test/scenario/openstack-sdk.py', import.meta.url));

let n: OpenStackNode;

describe('openstacksdk drives Nimbus', { skip: !hasSdk && 'python3-openstacksdk is not installed' }, () => {
  before(async () => {
    n = await startOpenStackNode('ossdk');
  });
  after(() => n?.t.stop());

  test('image upload, server create/wait/stop/start/delete', async () => {
    const { stdout } = await run(PYTHON, [script, n.authUrl, TENANT.user, TENANT.password, TENANT.project], {
      timeout: 300_000,
    });
    const seen = JSON.parse(stdout.trim().split('\n').pop()!);
    const account = await n.t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('name', '=', TENANT.project)
      .executeTakeFirst();
    assert.equal(seen.project, account!.uuid);
    assert.equal(seen.image, 'active');
    assert.deepEqual(seen.flavor, { ram: 1024, vcpus: 1 });
    assert.equal(seen.private_key, true);
    assert.deepEqual([seen.active, seen.stopped, seen.started], ['ACTIVE', 'SHUTOFF', 'ACTIVE']);
    assert.deepEqual(seen.servers_after, []);
    assert.deepEqual(seen.images_after, ['ossdk-image']);
    const rows = await until(
      () => n.t.db.db.selectFrom('vms').select('uuid').where('uuid', '=', seen.server_id).execute(),
      (r) => r.length === 0,
    );
    assert.equal(rows.length, 0, 'the deleted server is expunged from Nimbus');
  });
});
