/**
 * The stock `openstack` CLI (Debian python3-openstackclient 6.0.0, installed by .ci/run) against a
 * fresh Nimbus node: token issue; image create from a file; flavor list; keypair; server create
 * --wait; server image create; stop/start/reboot/pause/unpause; delete --wait; then every
 * resource made here is gone. Each step's result is read back through the CLI and through the
 * native API (one VM is one Nimbus VM whichever API made it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type OpenStackNode, startOpenStackNode, TENANT, until } from './openstack-fixtures.js';

const run = promisify(execFile);
const hasCli = await run('openstack', ['--version']).then(
  () => true,
  () => false,
);

let n: OpenStackNode;

async function os(...args: string[]): Promise<string> {
  const { stdout } = await run('openstack', args, {
    env: {
      ...process.env,
      OS_AUTH_URL: n.authUrl,
      OS_USERNAME: TENANT.user,
      OS_PASSWORD: TENANT.password,
      OS_PROJECT_NAME: TENANT.project,
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
      OS_IDENTITY_API_VERSION: '3',
      OS_REGION_NAME: 'RegionOne',
    },
    timeout: 120_000,
  });
  return stdout;
}
const json = async (...args: string[]) => JSON.parse(await os(...args, '-f', 'json'));

describe('the openstack CLI drives Nimbus', {
  skip: !hasCli && 'python3-openstackclient is not installed',
}, () => {
  before(async () => {
    n = await startOpenStackNode('oscli');
  });
  after(() => n?.t.stop());

  test('token, image, flavor, keypair, server lifecycle, snapshot, delete', async () => {
    const token = await json('token', 'issue');
    assert.ok(token.id.length > 20);
    // the Keystone token is a Nimbus session: the native API takes it as a bearer
    const who = await fetch(`${n.t.url}/v1/auth/whoami`, {
      headers: { authorization: `Bearer ${token.id}` },
    });
    assert.equal(who.status, 200);

    const file = join(tmpdir(), `oscli-${process.pid}.qcow2`);
    writeFileSync(file, Buffer.alloc(3 * 1024 * 1024, 7));
    const image = await json(
      'image',
      'create',
      '--file',
      file,
      '--disk-format',
      'qcow2',
      '--container-format',
      'bare',
      'cli-image',
    );
    const ready = await until(
      () => json('image', 'show', image.id),
      (i) => i.status === 'active' || i.status === 'killed',
    );
    assert.equal(ready.status, 'active');
    assert.equal(ready.size, 3 * 1024 * 1024);
    const native = await n.t.admin.get(`/v1/images/${image.id}`);
    assert.equal(native.body.state, 'Ready');

    const flavors = await json('flavor', 'list');
    const small = flavors.find((f: any) => f.Name === 'oscli-small');
    assert.deepEqual([small.RAM, small.VCPUs], [1024, 1]);

    const key = await os('keypair', 'create', 'cli-key');
    assert.match(key, /BEGIN RSA PRIVATE KEY/);
    assert.equal((await json('keypair', 'list')).length, 1);

    const server = await json(
      'server',
      'create',
      '--image',
      'cli-image',
      '--flavor',
      'oscli-small',
      '--key-name',
      'cli-key',
      '--wait',
      'cli-vm',
    );
    assert.equal(server.status, 'ACTIVE');
    assert.equal(server.key_name, 'cli-key');
    const vm = await n.t.admin.get(`/v1/vms/${server.id}`);
    assert.deepEqual([vm.body.state, vm.body.imageUuid], ['Running', image.id]);
    // the key reached the guest's config drive as cloud-init user-data
    const guest = await n.t.db.db
      .selectFrom('vmGuestConfigs')
      .selectAll()
      .where('vmUuid', '=', server.id)
      .executeTakeFirst();
    assert.match(guest!.userData!, /ssh_authorized_keys:\n {2}- ssh-rsa /);

    const snap = await json('server', 'image', 'create', '--name', 'cli-snap', '--wait', 'cli-vm');
    assert.equal(snap.status, 'active');

    const status = async () => (await json('server', 'show', 'cli-vm')).status;
    await os('server', 'stop', 'cli-vm');
    assert.equal(await until(status, (s) => s === 'SHUTOFF'), 'SHUTOFF');
    assert.equal((await n.t.admin.get(`/v1/vms/${server.id}`)).body.state, 'Stopped');
    await os('server', 'start', 'cli-vm');
    assert.equal(await until(status, (s) => s === 'ACTIVE'), 'ACTIVE');
    await os('server', 'reboot', '--wait', 'cli-vm');
    assert.equal(await status(), 'ACTIVE');
    await os('server', 'pause', 'cli-vm');
    assert.equal(await until(status, (s) => s === 'PAUSED'), 'PAUSED');
    await os('server', 'unpause', 'cli-vm');
    assert.equal(await until(status, (s) => s === 'ACTIVE'), 'ACTIVE');

    await os('server', 'delete', '--wait', 'cli-vm');
    assert.deepEqual(await json('server', 'list'), []);
    await os('image', 'delete', 'cli-snap', 'cli-image');
    await os('keypair', 'delete', 'cli-key');
    assert.deepEqual(
      (await json('image', 'list')).map((i: any) => i.Name),
      ['oscli-image'],
    );
    assert.deepEqual(await json('keypair', 'list'), []);
    // and gone from Nimbus too: the VM expunged, the images expunged
    const gone = await until(
      () => n.t.db.db.selectFrom('vms').select('uuid').where('uuid', '=', server.id).execute(),
      (rows) => rows.length === 0,
    );
    assert.equal(gone.length, 0);
    const images = await until(
      () => n.t.db.db.selectFrom('images').select('uuid').where('uuid', 'in', [image.id, snap.id]).execute(),
      (rows) => rows.length === 0,
    );
    assert.equal(images.length, 0);
  });
});
