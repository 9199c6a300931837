/**
 * The durability promise for networking (DESIGN §3; docs/network.md): a management node killed
 * with SIGKILL while VMs are being created on a flat and on a virtual-router L3 (whose router is
 * made on demand by the first of them), while NICs are hot-plugged and addresses changed, loses
 * nothing. After the restart every chain is resumed or rolled back; every VM is Running or gone;
 * no address is leaked or held twice; each L3's used capacity is exactly its NICs; the
 * virtual-router L3 has one Running router or none (never one stuck Creating); and both L3s
 * still take new VMs.
 *
 * The simulator keeps the hosts' network state in the node's memory (gone with the process), so
 * what is checked is the database.
 */
import assert from 'node:assert/strict';
import { after, describe, type TestContext, test } from 'node:test';
import type { DbHandle } from '../../src/db/pool.js';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import {
  CRASH_PASSWORD,
  crashHarness,
  type JobRow,
  jobsOf,
  noBackendsOf,
  sleep,
  summary,
  unfinished,
  waitUntil,
} from './crash-fixtures.js';
import { addL2, addL3 } from './network-fixtures.js';
import { buildVmEnv, GiB } from './vm-env.js';

const RECOVERY_MS = 120_000;
/** VM creates fired, half on each L3 */
const CREATES = 60;

interface Env {
  image: string;
  small: string;
  flat: string;
  routed: string;
  /** the routed L3's gateway: its router's guest address */
  gateway: string;
}

/** 8 hosts, `storage` primary storage, an image and an offering; a flat L3 and a virtual-router L3. */
async function buildEnv(api: Api, storage: 'local' | 'nfs'): Promise<Env> {
  // the fixtures only use the admin client: the child node's is enough
  const t = { admin: api } as unknown as TestNode;
  const vm = await buildVmEnv(t, {
    prefix: 'crashnet',
    hosts: 8,
    hostCpu: 64,
    hostMemory: 256 * GiB,
    storage,
  });
  const l2 = await addL2(t, vm, 'eth0');
  const flat = await addL3(t, l2, { name: 'flat', subnet: '10.50.1', shared: true, category: 'public' });
  const uplink = await addL3(t, l2, {
    name: 'uplink',
    subnet: '10.50.2',
    provider: null,
    shared: true,
    category: 'public',
  });
  const management = await addL3(t, l2, {
    name: 'management',
    subnet: '10.50.3',
    provider: null,
    category: 'system',
  });
  const offering = await api.job('POST', '/v1/virtual-router-offerings', {
    name: 'crashnet-vr',
    zoneUuid: vm.zone,
    cpu: 1,
    memory: GiB,
    imageUuid: vm.image,
    managementL3NetworkUuid: management.l3,
    publicL3NetworkUuid: uplink.l3,
    isDefault: true,
  });
  assert.equal(offering.state, 'Succeeded', JSON.stringify(offering));
  const routed = await addL3(t, l2, {
    name: 'routed',
    provider: 'virtual-router',
    category: 'private',
    cidr: '192.168.7.0/24',
  });
  return { image: vm.image, small: vm.small, flat: flat.l3, routed: routed.l3, gateway: '192.168.7.1' };
}

const createBody = (env: Env, name: string, l3: string) => ({
  name,
  imageUuid: env.image,
  instanceOfferingUuid: env.small,
  l3NetworkUuids: [l3],
});

async function nicOf(observer: DbHandle, vmUuid: string) {
  return observer.db
    .selectFrom('vmNics')
    .select(['uuid', 'ip', 'ipAddressUuid', 'l3NetworkUuid'])
    .where('vmUuid', '=', vmUuid)
    .orderBy('deviceId')
    .execute();
}

/** Every address has its holder, each L3's ipUsed is its NICs, and the invariants hold. */
async function assertNetworkConsistent(observer: DbHandle, api: Api, env: Env): Promise<void> {
  await assertInvariants(observer.db);
  const orphans = await observer.db
    .selectFrom('ipAddresses as a')
    .leftJoin('vmNics as n', 'n.ipAddressUuid', 'a.uuid')
    .select(['a.uuid', 'a.ip', 'a.usedFor', 'a.l3NetworkUuid'])
    .where('n.uuid', 'is', null)
    .execute();
  // no VIPs in this scenario: every address belongs to a NIC
  assert.deepEqual(orphans, [], 'every address row is held by a NIC');
  const l3s = await observer.db.selectFrom('l3Networks').select(['uuid', 'name']).execute();
  for (const l3 of l3s) {
    const res = await api.get(`/v1/l3-networks/${l3.uuid}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const nics = await observer.db
      .selectFrom('vmNics')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('l3NetworkUuid', '=', l3.uuid)
      .executeTakeFirstOrThrow();
    assert.equal(res.body.ipUsed, Number(nics.n), `L3 ${l3.name}: ipUsed is the number of its NICs`);
  }
  const vms = await observer.db.selectFrom('vms').select(['uuid', 'name', 'state']).execute();
  for (const v of vms) assert.equal(v.state, 'Running', `vm ${v.name} (${v.uuid}) is Running`);
  const routers = await observer.db
    .selectFrom('virtualRouters')
    .selectAll()
    .where('l3NetworkUuid', '=', env.routed)
    .execute();
  assert.ok(routers.length <= 1, 'at most one router for the L3');
  const router = routers[0];
  if (router) {
    assert.ok(
      ['Running', 'Error'].includes(router.state),
      `the router is Running or Error, not stuck: ${JSON.stringify(router)}`,
    );
    if (router.state === 'Running') {
      const appliance = vms.find((v) => v.uuid === router.vmUuid);
      assert.ok(appliance, 'a Running router has its appliance VM');
      assert.equal(router.guestIp, env.gateway, 'the router holds the gateway');
    }
  }
  // a VM with a NIC on the routed L3 has a Running router behind it
  const routedNics = await observer.db
    .selectFrom('vmNics')
    .select('uuid')
    .where('l3NetworkUuid', '=', env.routed)
    .execute();
  if (routedNics.length > 0)
    assert.equal(router?.state, 'Running', 'NICs on the routed L3 have their router');
}

interface Scenario {
  storage: 'local' | 'nfs';
  /** creates per wave (the waves split CREATES), and the pause after each */
  wave: number;
  gapMs: number;
  /** the wave after which the NIC attaches and IP changes are submitted */
  nicWave: number;
  /** when to kill, looking at the open jobs and the routed L3's router */
  killWhen(o: KillView): boolean;
  /** what killWhen waits for, in words */
  hit: string;
}

interface KillView {
  open: JobRow[];
  all: JobRow[];
  router: { state: string; jobUuid: string | null } | undefined;
}

const harness = crashHarness();
after(() => harness.cleanup());

async function runScenario(t: TestContext, name: string, o: Scenario): Promise<void> {
  const { db, observer, url, start } = await harness.setup(name);
  const first = start();
  await first.healthy();
  const api = await new Api(url).login('admin', CRASH_PASSWORD);
  const env = await buildEnv(api, o.storage);

  // Running VMs on the flat L3: three get a NIC on the routed L3, three a new address
  const running: string[] = [];
  for (const made of await Promise.all(
    Array.from({ length: 6 }, (_, i) => api.job('POST', '/v1/vms', createBody(env, `base-${i}`, env.flat))),
  )) {
    assert.equal(made.state, 'Succeeded', JSON.stringify(made));
    running.push(made.resourceUuid);
  }
  const before = new Map<string, { uuid: string; ip: string | null }>();
  for (const vm of running) before.set(vm, (await nicOf(observer, vm))[0]!);

  // slow the chains down so the kill finds them at different steps
  for (const fault of [
    { point: 'step:vm.create/allocate-host', delayMs: 1000 },
    { point: 'step:vm.create/apply-network-services', delayMs: 1500 },
    { point: 'command:vm.start', delayMs: 3000 },
    { point: 'command:vm.attach-nic', delayMs: 4000 },
    { point: 'step:vm-nic.change-ip/switch-ip', delayMs: 5000 },
  ]) {
    const res = await api.post('/v1/simulator/faults', fault);
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const submit = async (path: string, body: unknown) => {
    const res = await api.post(path, body);
    assert.equal(res.status, 202, `${path}: ${JSON.stringify(res.body)}`);
    return res.body.uuid as string;
  };
  // in waves, so the chains spread over their steps; the kill is watched for meanwhile (from
  // the wave of the NIC operations on) and stops the waves
  const submitted: string[] = [];
  let nicsSubmitted = false;
  let stop = false;
  const waves = (async () => {
    for (let wave = 0; wave < CREATES / o.wave && !stop; wave++) {
      const batch = Array.from({ length: o.wave }, (_, k) => {
        const i = wave * o.wave + k;
        return submit('/v1/vms', createBody(env, `burst-${i}`, i % 2 === 0 ? env.flat : env.routed));
      });
      if (wave === o.nicWave) {
        batch.push(
          ...running
            .slice(0, 3)
            .map((vm) => submit('/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: env.routed })),
          ...running
            .slice(3)
            .map((vm) => submit(`/v1/vm-nics/${before.get(vm)!.uuid}/actions/change-ip`, {})),
        );
      }
      submitted.push(...(await Promise.all(batch)));
      nicsSubmitted ||= wave === o.nicWave;
      await sleep(o.gapMs);
    }
  })();
  let seen = '';
  try {
    await waitUntil(
      o.hit,
      async () => {
        if (!nicsSubmitted) return false;
        const all = await jobsOf(observer);
        const open = all.filter((j) => j.state === 'Pending' || j.state === 'Running');
        if (open.length === 0)
          assert.fail('every job finished before the kill: the faults did not slow them');
        const router = await observer.db
          .selectFrom('virtualRouters')
          .select(['state', 'jobUuid'])
          .where('l3NetworkUuid', '=', env.routed)
          .executeTakeFirst();
        seen = `router ${JSON.stringify(router)}, jobs ${JSON.stringify(summary(all))}`;
        return o.killWhen({ open, all, router });
      },
      30_000,
      () => `\nlast seen: ${seen}${first.tail()}`,
    );
  } finally {
    stop = true;
    await waves;
  }
  await first.killHard();
  await noBackendsOf(observer, db.name);
  const atKill = new Map((await jobsOf(observer)).map((j) => [j.uuid, j]));
  const openAtKill = [...atKill.values()].filter((j) => j.state === 'Running' || j.state === 'Pending');
  t.diagnostic(`at the kill: ${JSON.stringify(summary(openAtKill))}`);
  assert.ok(openAtKill.length >= 10, 'the kill hit many chains in flight');

  // the restart (no faults: they were in the dead process's memory)
  const second = start();
  await second.healthy();
  let openNow: JobRow[] = [];
  await waitUntil(
    'no job Pending or Running after the restart',
    async () => {
      openNow = await unfinished(observer);
      return openNow.length === 0;
    },
    RECOVERY_MS,
    () => `\nstill open: ${JSON.stringify(summary(openNow))}${second.tail()}`,
  );
  const api2 = await new Api(url).login('admin', CRASH_PASSWORD);

  const final = await jobsOf(observer);
  t.diagnostic(
    `after recovery: ${JSON.stringify(summary(final.filter((j) => openAtKill.some((o) => o.uuid === j.uuid))))}`,
  );
  for (const j of final) {
    assert.ok(j.state === 'Succeeded' || j.state === 'Failed', `job ${j.kind} ${j.uuid} ended ${j.state}`);
    assert.equal(j.flow?.current ?? null, null, `job ${j.kind} ${j.uuid}: no step left in flight`);
    const was = atKill.get(j.uuid);
    if (was?.state === 'Running') {
      // every chain here recovers by rollback
      assert.equal(j.state, 'Failed', `interrupted ${j.kind} ${j.uuid} was rolled back`);
      assert.equal(j.error?.code, 'JOB_INTERRUPTED', `interrupted ${j.kind} ${j.uuid} says why`);
    } else if (was && was.state !== 'Pending') {
      assert.equal(j.state, was.state, `finished job ${j.kind} ${j.uuid} was left alone`);
    }
    if (j.state === 'Failed') {
      assert.equal(j.flow?.phase, 'rollback', `failed job ${j.uuid} was rolled back`);
      assert.deepEqual(j.flow?.done, [], `failed job ${j.uuid}: every done step was undone`);
      assert.equal(
        j.error?.details?.rollbackFailures,
        undefined,
        `job ${j.kind} ${j.uuid} rolled back cleanly: ${JSON.stringify(j.error)}`,
      );
    }
  }

  // each chain's own outcome in the database
  const vms = new Map(
    (await observer.db.selectFrom('vms').select(['uuid', 'state']).execute()).map((v) => [v.uuid, v]),
  );
  for (const j of final.filter((x) => x.kind === 'vm.create')) {
    if (j.state === 'Succeeded') assert.equal(vms.get(j.resourceUuid!)?.state, 'Running', `vm of ${j.uuid}`);
    else assert.equal(vms.get(j.resourceUuid!), undefined, `the rolled-back create ${j.uuid} left no vm`);
  }
  for (const j of final.filter((x) => submitted.includes(x.uuid) && x.kind === 'vm-nic.create')) {
    const nic = await observer.db
      .selectFrom('vmNics')
      .select('uuid')
      .where('uuid', '=', j.resourceUuid!)
      .executeTakeFirst();
    assert.equal(nic !== undefined, j.state === 'Succeeded', `attach ${j.uuid} ${j.state}: its NIC`);
  }
  for (const vm of running.slice(3)) {
    const old = before.get(vm)!;
    const job = final.find((x) => x.kind === 'vm-nic.change-ip' && x.resourceUuid === old.uuid)!;
    assert.ok(job, `the change-ip of nic ${old.uuid} is a job`);
    const [now] = await nicOf(observer, vm);
    if (job.state === 'Succeeded') assert.notEqual(now?.ip, old.ip, `nic ${old.uuid} has its new address`);
    else assert.equal(now?.ip, old.ip, `nic ${old.uuid} kept its address after the rollback`);
  }
  await assertNetworkConsistent(observer, api2, env);

  // and both L3s still take VMs (a router left Error is replaced; none is stuck)
  const fresh = await Promise.all([
    api2.job('POST', '/v1/vms', createBody(env, 'after-flat', env.flat)),
    api2.job('POST', '/v1/vms', createBody(env, 'after-routed', env.routed)),
  ]);
  for (const job of fresh) assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  await assertNetworkConsistent(observer, api2, env);
  const routers = await observer.db
    .selectFrom('virtualRouters')
    .select('state')
    .where('l3NetworkUuid', '=', env.routed)
    .execute();
  assert.deepEqual(routers, [{ state: 'Running' }], 'exactly one router, Running');

  await second.interrupt();
}

const stepsInFlight = (open: JobRow[]) => new Set(open.map((j) => `${j.kind}/${j.flow?.current}`));

describe('crash of a node while VMs get their networks', () => {
  test('SIGKILL while the router is being made: creates, NIC attaches and IP changes all roll back', (t) =>
    runScenario(t, 'crash-network-router', {
      storage: 'local',
      wave: 10,
      gapMs: 300,
      nicWave: 1,
      hit: 'the router’s appliance create in flight, chains at several steps',
      killWhen: ({ open, router }) =>
        open.some((j) => j.uuid === router?.jobUuid && j.state === 'Running') &&
        open.filter((j) => j.kind === 'vm.create').length >= CREATES &&
        stepsInFlight(open).size >= 3,
    }));

  test('SIGKILL once the router runs: VMs Running, starting and waiting; NICs being plugged', (t) =>
    runScenario(t, 'crash-network-started', {
      storage: 'nfs',
      wave: 5,
      gapMs: 700,
      nicWave: 6,
      hit: 'the router Running, VMs created and starting, NIC operations in flight',
      killWhen: ({ open, all, router }) =>
        router?.state === 'Running' &&
        all.some((j) => j.kind === 'vm.create' && j.state === 'Succeeded') &&
        open.some((j) => j.kind === 'vm.create' && j.flow?.current === 'start-on-host') &&
        open.some((j) => j.kind === 'vm-nic.create' && j.state === 'Running') &&
        open.some((j) => j.kind === 'vm-nic.change-ip' && j.state === 'Running'),
    }));
});
