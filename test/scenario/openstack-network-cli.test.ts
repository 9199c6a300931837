/**
 * The Debian `openstack` CLI (python3-openstackclient) itself against the Neutron and Cinder
 * façades: the network and volume steps of issue 13's scenario. It authenticates with
 * keystoneauth's `admin_token` plugin pointed at one endpoint (a Nimbus session token), so these
 * steps run without Keystone; the whole scenario through Keystone's catalog is the façade's
 * end-to-end test. Skipped where the CLI is not installed (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startTestNode, type TestNode } from '../support/node.js';
import { buildRouterEnv, type RouterEnv, tenant, vmOn } from './router-fixtures.js';

const CLI = '/usr/bin/openstack';
const missing = existsSync(CLI) ? false : `${CLI} is not installed (Debian python3-openstackclient)`;
const run = promisify(execFile);

let t: TestNode;
let env: RouterEnv;
let token: string;
let project: string;
let aliceApi: Awaited<ReturnType<typeof tenant>>['api'];

before(async () => {
  if (missing) return;
  t = await startTestNode();
  env = await buildRouterEnv(t, { prefix: 'oscli' });
  const a = await tenant(t, 'oscli-alice');
  aliceApi = a.api;
  token = a.api.token as string;
  project = a.uuid;
});
after(() => t?.stop());

/** one CLI command against an endpoint; JSON output parsed when asked for */
async function os(endpoint: string, args: string[]): Promise<any> {
  const { stdout } = await run(
    CLI,
    // `=` forms: a token may begin with '-', which argparse would take for an option
    ['--os-auth-type=admin_token', `--os-endpoint=${t.url}${endpoint}`, `--os-token=${token}`, ...args],
    { timeout: 120_000, env: { ...process.env, PYTHONWARNINGS: 'ignore' } },
  ).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`openstack ${args.join(' ')}: ${err.stderr ?? err.message}`);
  });
  return args.includes('json') ? JSON.parse(stdout) : stdout;
}
const net = (...args: string[]) => os('/network', args);
const vol = (...args: string[]) => os(`/volume/v3/${project}`, args);

test('openstack CLI: network, subnet, router with gateway and interface, security group, floating IP', {
  skip: missing,
}, async () => {
  const network = await net('network', 'create', 'cli-net', '-f', 'json');
  assert.equal(network.status, 'ACTIVE');
  const subnet = await net(
    'subnet',
    'create',
    'cli-sub',
    '--network',
    'cli-net',
    '--subnet-range',
    '192.168.44.0/24',
    '--dns-nameserver',
    '8.8.8.8',
    '-f',
    'json',
  );
  assert.equal(subnet.gateway_ip, '192.168.44.1');
  await net('router', 'create', 'cli-r', '-f', 'json');
  await net('router', 'set', '--external-gateway', 'oscli-public', 'cli-r');
  await net('router', 'add', 'subnet', 'cli-r', 'cli-sub');
  const router = await net('router', 'show', 'cli-r', '-f', 'json');
  assert.equal(router.external_gateway_info.network_id, env.publicL3);
  assert.equal(router.interfaces_info.length, 1);
  assert.equal(router.interfaces_info[0].subnet_id, subnet.id);
  assert.equal(router.interfaces_info[0].ip_address, '192.168.44.1');

  const sg = await net('security', 'group', 'create', 'cli-sg', '-f', 'json');
  const rule = await net(
    'security',
    'group',
    'rule',
    'create',
    '--protocol',
    'tcp',
    '--dst-port',
    '22',
    'cli-sg',
    '-f',
    'json',
  );
  assert.equal(rule.port_range_min, 22);
  assert.equal((await aliceApi.get(`/v1/security-group-rules/${rule.id}`)).body.securityGroupUuid, sg.id);

  const vm = await vmOn(t, env, aliceApi, [network.id]);
  const fip = await net('floating', 'ip', 'create', 'oscli-public', '-f', 'json');
  // `server add floating ip` is Nova's command; its Neutron call is this one
  await net('floating', 'ip', 'set', '--port', vm.nics[0]!.uuid, fip.floating_ip_address);
  const bound = await net('floating', 'ip', 'show', fip.floating_ip_address, '-f', 'json');
  assert.equal(bound.fixed_ip_address, vm.nics[0]!.ip);
  assert.equal((await aliceApi.get(`/v1/eips/${fip.id}`)).body.vmNicUuid, vm.nics[0]!.uuid);
  await net('floating', 'ip', 'unset', '--port', fip.floating_ip_address);
  await net('floating', 'ip', 'delete', fip.floating_ip_address);
  assert.equal((await aliceApi.get(`/v1/eips/${fip.id}`)).status, 404);

  await aliceApi.job('DELETE', `/v1/vms/${vm.vm}`);
  await aliceApi.job('POST', `/v1/vms/${vm.vm}/actions/expunge`, {});
  await net('security', 'group', 'delete', 'cli-sg');
  await net('router', 'remove', 'subnet', 'cli-r', 'cli-sub');
  await net('router', 'delete', 'cli-r');
  await net('subnet', 'delete', 'cli-sub');
  await net('network', 'delete', 'cli-net');
  assert.deepEqual(
    (await net('network', 'list', '-f', 'json')).map((n: { Name: string }) => n.Name),
    ['oscli-public'],
  );
});

test('openstack CLI: volume create, extend, snapshot, delete', { skip: missing }, async () => {
  const made = await vol('volume', 'create', '--size', '1', 'cli-vol', '-f', 'json');
  let shown = made;
  for (let i = 0; i < 100 && shown.status !== 'available'; i++)
    shown = await vol('volume', 'show', 'cli-vol', '-f', 'json');
  assert.equal(shown.status, 'available');
  await vol('volume', 'set', '--size', '2', 'cli-vol');
  for (let i = 0; i < 100 && shown.size !== 2; i++)
    shown = await vol('volume', 'show', 'cli-vol', '-f', 'json');
  assert.equal((await aliceApi.get(`/v1/volumes/${made.id}`)).body.size, 2 * 1024 ** 3);
  const snap = await vol('volume', 'snapshot', 'create', '--volume', 'cli-vol', 'cli-snap', '-f', 'json');
  assert.equal(snap.volume_id, made.id);
  let snapShown = snap;
  for (let i = 0; i < 100 && snapShown.status !== 'available'; i++)
    snapShown = await vol('volume', 'snapshot', 'show', 'cli-snap', '-f', 'json');
  await vol('volume', 'snapshot', 'delete', 'cli-snap');
  for (let i = 0; i < 100 && (await vol('volume', 'snapshot', 'list', '-f', 'json')).length > 0; i++);
  await vol('volume', 'delete', 'cli-vol');
  for (let i = 0; i < 100 && (await vol('volume', 'list', '-f', 'json')).length > 0; i++);
  assert.deepEqual(await vol('volume', 'list', '-f', 'json'), []);
});
