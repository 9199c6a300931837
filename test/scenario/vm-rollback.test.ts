/**
 * The VM rollback table (DESIGN.md §7): for every VM chain and every step of it, a failure
 * injected at that step fails the job with the injected error, rolls every done step back, and
 * leaves no trace: host capacity, storage capacity (per host for local storage), volumes, image
 * cache entries, quota usage, the simulated hypervisor and the VM row are as before. Host
 * command failures (vm.start, volume.create, image.cache, vm.stop, vm.migrate, vm.destroy) roll
 * back the same way, and so do network syncs failing (dhcp.set-entries, network.ensure-bridges):
 * every VM has a NIC on a shared flat L3, so NICs, addresses and every host's DHCP entries must
 * be as before too. Creates run on local and on shared storage; the VMs belong to a tenant, so
 * quotas are counted. A row per chain × step: a chain registered without rows fails coverage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QUOTA_NAMES } from '../../src/resources/identity/quota/quota.js';
import { registeredSteps } from '../support/chains.js';
import { assertInvariants } from '../support/invariants.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { addL2, addL3, dhcpNicsOn } from './network-fixtures.js';
import { buildVmEnv, clearFaults, fault, footprint, GiB, next, type VmEnv, vmOf } from './vm-env.js';

let t: TestNode;
let tenant: Api;
let tenantUuid: string;
const envs: Record<'local' | 'nfs', VmEnv> = {} as Record<'local' | 'nfs', VmEnv>;
/** per environment: a shared flat L3 every VM of the table has a NIC on */
const l3s: Record<'local' | 'nfs', string> = {} as Record<'local' | 'nfs', string>;

before(async () => {
  t = await startTestNode();
  envs.nfs = await buildVmEnv(t, { hosts: 3, storage: 'nfs', prefix: 'rbn', hostMemory: 64 * GiB });
  envs.local = await buildVmEnv(t, { hosts: 2, storage: 'local', prefix: 'rbl', hostMemory: 64 * GiB });
  for (const storage of ['local', 'nfs'] as const) {
    const l2 = await addL2(t, envs[storage], 'eth0');
    l3s[storage] = (await addL3(t, l2, { shared: true, category: 'public' })).l3;
  }
  const acct = await t.admin.job('POST', '/v1/accounts', { name: 'rb-tenant', password: 'tenant-password' });
  tenantUuid = acct.resourceUuid;
  tenant = await t.anon.login('rb-tenant', 'tenant-password');
  await t.db.db
    .insertInto('quotas')
    .values(QUOTA_NAMES.map((name) => ({ accountUuid: tenantUuid, name, limitValue: 10_000 * GiB })))
    .onConflict((oc) => oc.columns(['accountUuid', 'name']).doUpdateSet({ limitValue: 10_000 * GiB }))
    .execute();
});
after(() => t.stop());

type Storage = 'local' | 'nfs';

const createBody = (storage: Storage, image = envs[storage].image) => ({
  name: `rb-vm-${next()}`,
  imageUuid: image,
  instanceOfferingUuid: envs[storage].small,
  clusterUuid: envs[storage].cluster,
  dataDiskSizes: [GiB],
  l3NetworkUuids: [l3s[storage]],
});

async function succeed(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

/** A tenant VM in `state` on `storage`. */
async function vmIn(
  state: 'Running' | 'Stopped' | 'Paused' | 'Destroyed',
  storage: Storage,
): Promise<string> {
  const uuid = (await succeed(tenant, 'POST', '/v1/vms', createBody(storage))).resourceUuid as string;
  if (state === 'Stopped') await succeed(tenant, 'POST', `/v1/vms/${uuid}/actions/stop`, {});
  if (state === 'Paused') await succeed(tenant, 'POST', `/v1/vms/${uuid}/actions/pause`, {});
  if (state === 'Destroyed') await succeed(tenant, 'DELETE', `/v1/vms/${uuid}`);
  return uuid;
}

interface ChainSpec {
  /** the state the VM must be in (none for a create) */
  from?: 'Running' | 'Stopped' | 'Paused' | 'Destroyed';
  request(uuid: string, storage: Storage, image?: string): [string, string, unknown];
  /** admin only (migrate) */
  admin?: boolean;
}

const action =
  (name: string, body: unknown = {}) =>
  (uuid: string): [string, string, unknown] => ['POST', `/v1/vms/${uuid}/actions/${name}`, body];

const CHAINS: Record<string, ChainSpec> = {
  'vm.create': { request: (_u, storage, image) => ['POST', '/v1/vms', createBody(storage, image)] },
  'vm.start': { from: 'Stopped', request: action('start') },
  'vm.stop': { from: 'Running', request: action('stop') },
  'vm.reboot': { from: 'Running', request: action('reboot') },
  'vm.pause': { from: 'Running', request: action('pause') },
  'vm.resume': { from: 'Paused', request: action('resume') },
  'vm.change-offering': {
    from: 'Stopped',
    request: (u) => action('change-offering', { cpu: 2, memory: 2 * GiB })(u),
  },
  'vm.migrate': { from: 'Running', request: action('migrate'), admin: true },
  'vm.destroy': { from: 'Running', request: (u) => ['DELETE', `/v1/vms/${u}`, undefined] },
  'vm.recover': { from: 'Destroyed', request: action('recover') },
  'vm.expunge': { from: 'Destroyed', request: action('expunge') },
  'vm.rebuild': { from: 'Stopped', request: action('rebuild') },
  'vm.update': {
    from: 'Running',
    request: (u) => ['PATCH', `/v1/vms/${u}`, { name: 'renamed', description: 'x' }],
  },
};

/** Steps of every VM chain, written out (checked against the registered ones). */
const STEPS: Record<string, string[]> = {
  'vm.create': [
    'create-record',
    'allocate-nics',
    'allocate-host',
    'allocate-primary-storage',
    'ensure-image-cache',
    'create-root-volume',
    'create-data-volumes',
    'apply-network-services',
    'start-on-host',
    'mark-state',
  ],
  'vm.start': ['admit', 'allocate-host', 'apply-network-services', 'start-on-host', 'mark-running'],
  'vm.stop': ['admit', 'stop-on-host', 'release-network-services', 'mark-stopped'],
  'vm.reboot': ['admit', 'reboot-on-host', 'mark-running'],
  'vm.pause': ['admit', 'pause-on-host', 'mark-paused'],
  'vm.resume': ['admit', 'resume-on-host', 'mark-running'],
  'vm.change-offering': ['admit', 'apply'],
  'vm.migrate': [
    'admit',
    'allocate-target',
    'prepare-target-network',
    'migrate-on-host',
    'move-network-services',
    'mark-running',
  ],
  'vm.destroy': [
    'admit',
    'destroy-on-host',
    'release-network-services',
    'list-data-volumes',
    'detach-data-volumes',
    'mark-destroyed',
  ],
  'vm.recover': ['admit', 'mark-stopped'],
  'vm.expunge': ['admit', 'destroy-volumes', 'release-nics', 'delete-record'],
  'vm.update': ['apply'],
  'vm.rebuild': ['admit', 'new-root-volume', 'swap-root', 'destroy-old-root', 'mark-rebuilt'],
};
const AT_ADMISSION = new Set(['create-record', 'admit']);
/** where a chain runs: creates on both kinds of storage, a migration only on shared storage */
const storagesOf = (kind: string): Storage[] =>
  kind === 'vm.create' || kind === 'vm.rebuild'
    ? ['local', 'nfs']
    : kind === 'vm.migrate'
      ? ['nfs']
      : ['local'];

/**
 * Host command failures, each with the chain it breaks (image.cache: the cache wraps the cause).
 * A network sync fails once (`times`): the rollback's re-sync must then go through.
 */
const COMMANDS: Array<{ kind: string; command: string; code?: string; times?: number }> = [
  { kind: 'vm.create', command: 'image.cache', code: 'IMAGE_CACHE_FAILED' },
  { kind: 'vm.create', command: 'volume.create' },
  { kind: 'vm.create', command: 'dhcp.set-entries', times: 1 },
  { kind: 'vm.create', command: 'network.ensure-bridges', times: 1 },
  { kind: 'vm.create', command: 'vm.start' },
  { kind: 'vm.start', command: 'dhcp.set-entries', times: 1 },
  { kind: 'vm.start', command: 'vm.start' },
  { kind: 'vm.stop', command: 'vm.stop' },
  { kind: 'vm.pause', command: 'vm.pause' },
  { kind: 'vm.migrate', command: 'vm.migrate' },
  { kind: 'vm.destroy', command: 'vm.destroy' },
  { kind: 'vm.rebuild', command: 'volume.create' },
  // once: the rollback deletes the new disk with the same command
  { kind: 'vm.rebuild', command: 'volume.delete', times: 1 },
];

/** An image never cached anywhere yet, so a create must copy it (image.cache runs). */
async function freshImage(storage: Storage): Promise<string> {
  const bs = await t.db.db
    .selectFrom('images')
    .select('backupStorageUuid')
    .where('uuid', '=', envs[storage].image)
    .executeTakeFirstOrThrow();
  const job = await succeed(t.admin, 'POST', '/v1/images', {
    name: `rb-image-${next()}`,
    url: `http://images.example/rb-${next()}.qcow2?size=${GiB}`,
    format: 'qcow2',
    backupStorageUuid: bs.backupStorageUuid,
    isPublic: true,
  });
  return job.resourceUuid;
}

/**
 * Everything a rollback must restore: the counters, the VM with its volumes and NICs as they
 * were, every IP address, and what every host's DHCP serves.
 */
async function snapshot(uuid: string | undefined) {
  const { updatedAt: _u, ...vm } = (uuid ? await vmOf(t, uuid) : undefined) ?? { updatedAt: null };
  const volumes = uuid
    ? await t.db.db
        .selectFrom('volumes')
        .select(['uuid', 'state', 'deviceId', 'size'])
        .where('vmUuid', '=', uuid)
        .orderBy('uuid')
        .execute()
    : [];
  const nics = uuid
    ? await t.db.db
        .selectFrom('vmNics')
        .select(['uuid', 'ip', 'mac', 'hostUuid', 'isDefault', 'deviceId'])
        .where('vmUuid', '=', uuid)
        .orderBy('deviceId')
        .execute()
    : [];
  const addresses = await t.db.db.selectFrom('ipAddresses').select(['uuid', 'ip']).orderBy('uuid').execute();
  const allNics = await t.db.db.selectFrom('vmNics').select(['uuid', 'hostUuid']).orderBy('uuid').execute();
  const hosts = [...envs.local.hosts, ...envs.nfs.hosts];
  const dhcp = Object.fromEntries(await Promise.all(hosts.map(async (h) => [h, await dhcpNicsOn(t, h)])));
  return { ...(await footprint(t)), vm, volumes, nics, addresses, allNics, dhcp };
}

async function run(
  kind: string,
  storage: Storage,
  point: string,
  o: { inject?: string; expect?: string; step?: string; image?: string; times?: number } = {},
) {
  const { step } = o;
  const code = o.expect ?? o.inject ?? 'INJECTED_FAULT';
  const spec = CHAINS[kind]!;
  const uuid = spec.from ? await vmIn(spec.from, storage) : undefined;
  const before = await snapshot(uuid);
  const [method, path, body] = spec.request(uuid ?? '', storage, o.image);
  await fault(t, {
    point,
    error: { code: o.inject ?? 'INJECTED_FAULT' },
    ...(o.times ? { times: o.times } : {}),
  });
  let job: any;
  try {
    job = await (spec.admin ? t.admin : tenant).job(method, path, body);
  } finally {
    await clearFaults(t);
  }
  assert.equal(job.kind, kind);
  if (step && AT_ADMISSION.has(step)) {
    // done with the admission, in its transaction: the step's fault point is never reached
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    return;
  }
  assert.equal(job.state, 'Failed', JSON.stringify(job));
  assert.equal(job.error.code, code);
  assert.equal(job.error.details?.rollbackFailures, undefined, 'every rollback succeeded');
  assert.deepEqual(job.steps.done, [], 'every done step was rolled back');
  if (kind === 'vm.expunge' && (step === 'release-nics' || step === 'delete-record')) {
    // documented: volumes (and NICs) cannot be brought back; the VM stays Destroyed without
    // them, and expunging again finishes the job
    const vm = await vmOf(t, uuid!);
    assert.deepEqual([vm?.state, vm?.task], ['Destroyed', null]);
    await succeed(tenant, 'POST', `/v1/vms/${uuid}/actions/expunge`, {});
    assert.equal(await vmOf(t, uuid!), undefined);
    return;
  }
  if (kind === 'vm.rebuild' && step === 'mark-rebuilt') {
    // documented: the old disk is deleted by then; the VM stays Stopped on its new one
    const vm = await vmOf(t, uuid!);
    assert.deepEqual([vm?.state, vm?.task], ['Stopped', null]);
    const oldRoot = (before.vm as { rootVolumeUuid?: string }).rootVolumeUuid;
    assert.notEqual(vm?.rootVolumeUuid, oldRoot);
    const roots = (await snapshot(uuid)).volumes.filter((v) => v.deviceId === 0);
    assert.deepEqual(
      roots.map((v) => [v.uuid, v.state]),
      [[vm?.rootVolumeUuid, 'Ready']],
    );
    return;
  }
  const afterwards = await snapshot(uuid);
  assert.deepEqual(afterwards, before);
}

describe('VM rollback table: a failure at every step leaves nothing behind', () => {
  test('the table has a row for every registered VM chain × step', () => {
    assert.deepEqual(Object.fromEntries(registeredSteps(t.node, ['vm.'])), STEPS);
  });

  for (const [kind, steps] of Object.entries(STEPS)) {
    for (const storage of storagesOf(kind)) {
      for (const step of steps) {
        const note = AT_ADMISSION.has(step) ? ' (done at admission: never reached)' : '';
        test(`${kind} / ${step} on ${storage}${note}`, () =>
          run(kind, storage, `step:${kind}/${step}`, {
            inject: `FAULT_${step.toUpperCase().replace(/-/g, '_')}`,
            step,
          }));
      }
    }
  }

  for (const { kind, command, code, times } of COMMANDS) {
    for (const storage of storagesOf(kind)) {
      test(`${kind}: host command ${command} fails on ${storage}`, async () =>
        run(kind, storage, `command:${command}`, {
          ...(code ? { expect: code } : {}),
          ...(times ? { times } : {}),
          ...(command === 'image.cache' ? { image: await freshImage(storage) } : {}),
        }));
    }
  }

  test('afterwards the invariants hold', async () => {
    await assertInvariants(t.db.db);
  });
});
