/**
 * Issue 13's whole CLI scenario, in one test, with the stock Debian `openstack` CLI
 * (python3-openstackclient 6.0.0) through Keystone's catalog against a fresh Nimbus node with
 * simulated hosts: token issue; image create from a file; flavor list; network, subnet, router with
 * an external gateway and an interface; security group with a rule; keypair; server create --wait;
 * floating IP create and add; volume create, attach, detach; server image create; server
 * stop/start/reboot/delete; then every resource deleted and checked gone, through the CLI and in
 * Nimbus's own tables. In test:real because ~50 CLI runs (each a Python start) take minutes on
 * these machines; skipped where the CLI is not installed (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { until } from '../scenario/openstack-fixtures.js';
import { buildRouterEnv, type RouterEnv, tenant } from '../scenario/router-fixtures.js';
import { startTestNode, type TestNode } from '../support/node.js';

const CLI = '/usr/bin/openstack';
const missing = existsSync(CLI) ? false : `${CLI} is not installed (Debian python3-openstackclient)`;
const run = promisify(execFile);
const PROJECT = 'osscn-demo';

let t: TestNode;
let env: RouterEnv;
let project: string;

before(async () => {
  if (missing) return;
  t = await startTestNode();
  // one host: the storage is local, and a Cinder client cannot choose the host a new volume is
  // made on, so with two hosts the attach may be a 409 VOLUME_HOST_MISMATCH (docs/openstack.md)
  env = await buildRouterEnv(t, { prefix: 'osscn', hosts: 1 });
  project = (await tenant(t, PROJECT)).uuid;
});
after(() => t?.stop());

/** one CLI command as the tenant, through Keystone (password auth, project scope, catalog) */
async function os(...args: string[]): Promise<string> {
  const { stdout } = await run(CLI, args, {
    timeout: 180_000,
    env: {
      ...process.env,
      PYTHONWARNINGS: 'ignore',
      OS_AUTH_URL: `${t.url}/identity/v3`,
      OS_USERNAME: PROJECT,
      OS_PASSWORD: `${PROJECT}-password`,
      OS_PROJECT_NAME: PROJECT,
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
      OS_IDENTITY_API_VERSION: '3',
      OS_REGION_NAME: 'RegionOne',
    },
  }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`openstack ${args.join(' ')}: ${err.stderr || err.message}`);
  });
  return stdout;
}
const json = async (...args: string[]): Promise<any> => JSON.parse(await os(...args, '-f', 'json'));
const names = (rows: { Name: string }[]) => rows.map((r) => r.Name).sort();

test('openstack CLI: the whole scenario of issue 13, every resource gone at the end', {
  skip: missing,
  timeout: 900_000,
}, async () => {
  // identity: the Keystone token is a Nimbus session (the native API takes it as a bearer)
  const token = await json('token', 'issue');
  assert.equal(token.project_id.replaceAll('-', ''), project.replaceAll('-', ''));
  const who = await fetch(`${t.url}/v1/auth/whoami`, { headers: { authorization: `Bearer ${token.id}` } });
  assert.equal(who.status, 200);

  // image from a file
  const file = join(tmpdir(), `osscn-${process.pid}.qcow2`);
  writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 3));
  const image = await json(
    'image',
    'create',
    '--file',
    file,
    '--disk-format',
    'qcow2',
    '--container-format',
    'bare',
    'scn-image',
  );
  rmSync(file);
  const ready = await until(
    () => json('image', 'show', image.id),
    (i) => i.status === 'active' || i.status === 'killed',
  );
  assert.equal(ready.status, 'active');
  assert.equal((await t.admin.get(`/v1/images/${image.id}`)).body.state, 'Ready');

  const small = (await json('flavor', 'list')).find((f: any) => f.Name === 'osscn-small');
  assert.deepEqual([small.RAM, small.VCPUs], [1024, 1]);

  // network, subnet, router with the external gateway and the subnet as its interface
  const net = await json('network', 'create', 'scn-net');
  const subnet = await json(
    'subnet',
    'create',
    'scn-sub',
    '--network',
    'scn-net',
    '--subnet-range',
    '192.168.77.0/24',
    '--dns-nameserver',
    '8.8.8.8',
  );
  assert.equal(subnet.gateway_ip, '192.168.77.1');
  const router = await json('router', 'create', 'scn-router');
  await os('router', 'set', '--external-gateway', 'osscn-public', 'scn-router');
  await os('router', 'add', 'subnet', 'scn-router', 'scn-sub');
  const routerShown = await json('router', 'show', 'scn-router');
  assert.equal(routerShown.external_gateway_info.network_id, env.publicL3);
  assert.deepEqual(
    routerShown.interfaces_info.map((i: any) => [i.subnet_id, i.ip_address]),
    [[subnet.id, '192.168.77.1']],
  );

  // security group with a rule
  const sg = await json('security', 'group', 'create', 'scn-sg');
  const rule = await json(
    'security',
    'group',
    'rule',
    'create',
    '--protocol',
    'tcp',
    '--dst-port',
    '22',
    'scn-sg',
  );
  assert.deepEqual([rule.port_range_min, rule.port_range_max, rule.security_group_id], [22, 22, sg.id]);

  const key = await os('keypair', 'create', 'scn-key');
  assert.match(key, /BEGIN RSA PRIVATE KEY/);

  // the server, on the network with the group and key, waited for
  const server = await json(
    'server',
    'create',
    '--image',
    'scn-image',
    '--flavor',
    'osscn-small',
    '--network',
    'scn-net',
    '--security-group',
    'scn-sg',
    '--key-name',
    'scn-key',
    '--wait',
    'scn-vm',
  );
  assert.equal(server.status, 'ACTIVE');
  const vm = await t.admin.get(`/v1/vms/${server.id}`);
  assert.deepEqual([vm.body.state, vm.body.imageUuid], ['Running', image.id]);
  const nic = await t.db.db
    .selectFrom('vmNics')
    .selectAll()
    .where('vmUuid', '=', server.id)
    .executeTakeFirstOrThrow();
  assert.equal(nic.l3NetworkUuid, net.id);
  const members = await t.db.db
    .selectFrom('vmNicSecurityGroups')
    .select('securityGroupUuid')
    .where('vmNicUuid', '=', nic.uuid)
    .execute();
  assert.deepEqual(
    members.map((m) => m.securityGroupUuid),
    [sg.id],
  );

  // a floating IP on the external network, added to the server (Neutron: its port)
  const fip = await json('floating', 'ip', 'create', 'osscn-public');
  await os('server', 'add', 'floating', 'ip', 'scn-vm', fip.floating_ip_address);
  const bound = await json('floating', 'ip', 'show', fip.floating_ip_address);
  assert.deepEqual([bound.fixed_ip_address, bound.port_id], [nic.ip, nic.uuid]);
  assert.equal((await t.admin.get(`/v1/eips/${fip.id}`)).body.vmNicUuid, nic.uuid);

  // a volume: create, attach (in-use on the VM), detach (available)
  const vol = await json('volume', 'create', '--size', '1', 'scn-vol');
  const volStatus = async () => (await json('volume', 'show', 'scn-vol')).status;
  assert.equal(await until(volStatus, (s) => s === 'available' || s === 'error', 100), 'available');
  await os('server', 'add', 'volume', 'scn-vm', 'scn-vol');
  assert.equal(await until(volStatus, (s) => s === 'in-use' || s === 'error', 100), 'in-use');
  assert.equal((await t.admin.get(`/v1/volumes/${vol.id}`)).body.vmUuid, server.id);
  await os('server', 'remove', 'volume', 'scn-vm', 'scn-vol');
  assert.equal(await until(volStatus, (s) => s === 'available' || s === 'error', 100), 'available');
  assert.equal((await t.admin.get(`/v1/volumes/${vol.id}`)).body.vmUuid ?? null, null);

  // snapshot of the server to an image
  const snap = await json('server', 'image', 'create', '--name', 'scn-snap', '--wait', 'scn-vm');
  assert.equal(snap.status, 'active');

  // power: stop, start, reboot
  const status = async () => (await json('server', 'show', 'scn-vm')).status;
  await os('server', 'stop', 'scn-vm');
  assert.equal(await until(status, (s) => s === 'SHUTOFF' || s === 'ERROR', 100), 'SHUTOFF');
  assert.equal((await t.admin.get(`/v1/vms/${server.id}`)).body.state, 'Stopped');
  await os('server', 'start', 'scn-vm');
  assert.equal(await until(status, (s) => s === 'ACTIVE' || s === 'ERROR', 100), 'ACTIVE');
  await os('server', 'reboot', '--wait', 'scn-vm');
  assert.equal(await status(), 'ACTIVE');

  // teardown, in the order a user would: floating IP off and away, server, volume, images, key,
  // router interface and router, group, subnet, network
  await os('server', 'remove', 'floating', 'ip', 'scn-vm', fip.floating_ip_address);
  await os('floating', 'ip', 'delete', fip.floating_ip_address);
  await os('server', 'delete', '--wait', 'scn-vm');
  await os('volume', 'delete', 'scn-vol');
  await until(
    () => json('volume', 'list'),
    (l) => l.length === 0,
    100,
  );
  await os('image', 'delete', 'scn-snap', 'scn-image');
  await os('keypair', 'delete', 'scn-key');
  await os('router', 'remove', 'subnet', 'scn-router', 'scn-sub');
  await os('router', 'unset', '--external-gateway', 'scn-router');
  await os('router', 'delete', 'scn-router');
  await os('security', 'group', 'delete', 'scn-sg');
  await os('subnet', 'delete', 'scn-sub');
  await os('network', 'delete', 'scn-net');

  // gone, as the CLI sees it
  assert.deepEqual(await json('server', 'list'), []);
  assert.deepEqual(await json('volume', 'list'), []);
  assert.deepEqual(await json('floating', 'ip', 'list'), []);
  assert.deepEqual(await json('keypair', 'list'), []);
  assert.deepEqual(await json('router', 'list'), []);
  // the shared external network's subnet is listed to every project, as Neutron does
  assert.deepEqual(names(await json('subnet', 'list')), ['osscn-public-range']);
  assert.deepEqual(names(await json('network', 'list')), ['osscn-public']);
  assert.deepEqual(names(await json('image', 'list')), ['osscn-image']);
  assert.ok(!names(await json('security', 'group', 'list')).includes('scn-sg'));
  // and gone from Nimbus's tables (expunged, not merely hidden)
  const db = t.db.db;
  const left = async () => ({
    vms: (await db.selectFrom('vms').select('uuid').where('uuid', '=', server.id).execute()).length,
    images: (await db.selectFrom('images').select('uuid').where('uuid', 'in', [image.id, snap.id]).execute())
      .length,
    volumes: (await db.selectFrom('volumes').select('uuid').where('uuid', '=', vol.id).execute()).length,
    eips: (await db.selectFrom('eips').select('uuid').where('uuid', '=', fip.id).execute()).length,
    l3s: (await db.selectFrom('l3Networks').select('uuid').where('uuid', '=', net.id).execute()).length,
    groups: (await db.selectFrom('securityGroups').select('uuid').where('uuid', '=', sg.id).execute()).length,
    routers: (await sql`select uuid from openstack_routers where uuid = ${router.id}`.execute(db)).rows
      .length,
  });
  const none = { vms: 0, images: 0, volumes: 0, eips: 0, l3s: 0, groups: 0, routers: 0 };
  assert.deepEqual(await until(left, (l) => JSON.stringify(l) === JSON.stringify(none), 300), none);
});
