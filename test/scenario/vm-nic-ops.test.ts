/**
 * The vm-nics kind through the API (docs/network.md "VM NICs"): attach (POST /v1/vm-nics),
 * detach (DELETE), change-ip and set-default, on Running VMs (hot-plug, the host's DHCP) and
 * Stopped ones (database only), with the simulated host as evidence; refusals at admission;
 * and the rollback table of the four chains: a failure at every step and at the host commands
 * leaves NICs, addresses, the VM and every host's network state as they were.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertTableCovers, registeredSteps } from '../support/chains.js';
import { assertInvariants } from '../support/invariants.js';
import { startTestNode, type TestNode } from '../support/node.js';
import {
  addL3,
  addressesOf,
  buildNetEnv,
  dhcpNicsOn,
  type NetEnv,
  nicsOf,
  pluggedOn,
} from './network-fixtures.js';
import { clearFaults, createVm, fault, GiB, ok, vmOf } from './vm-env.js';

let t: TestNode;
let env: NetEnv;
let second: { l3: string; subnet: string };

before(async () => {
  t = await startTestNode();
  env = await buildNetEnv(t, { prefix: 'nops', hosts: 2, hostMemory: 64 * GiB });
  second = await addL3(t, env.l2, { name: 'nops-second' });
});
after(() => t.stop());

async function vmIn(state: 'Running' | 'Stopped'): Promise<string> {
  const job = await createVm(t, env, { l3NetworkUuids: [env.l3] });
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  if (state === 'Stopped') await ok(t, 'POST', `/v1/vms/${job.resourceUuid}/actions/stop`, {});
  return job.resourceUuid;
}

const hostOf = async (vm: string) => (await vmOf(t, vm))!.hostUuid;

describe('attach, detach, change-ip, set-default', () => {
  test('attach to a Running VM: hot-plugged, on its host’s DHCP; detach unplugs it and releases the address', async () => {
    const vm = await vmIn('Running');
    const host = (await hostOf(vm))!;
    const job = await ok(t, 'POST', '/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: second.l3 });
    const nic = job.resourceUuid as string;
    const nics = await nicsOf(t, vm);
    assert.deepEqual(
      nics.map((n) => [n.deviceId, n.l3NetworkUuid, n.isDefault, n.hostUuid]),
      [
        [0, env.l3, true, host],
        [1, second.l3, false, host],
      ],
    );
    assert.equal(job.result.uuid, nic);
    assert.deepEqual(await pluggedOn(t, host, vm), [nic]);
    assert.ok((await dhcpNicsOn(t, host)).includes(nic));
    assert.equal((await addressesOf(t, vm)).length, 2);

    await ok(t, 'DELETE', `/v1/vm-nics/${nic}`);
    assert.deepEqual(await pluggedOn(t, host, vm), []);
    assert.ok(!(await dhcpNicsOn(t, host)).includes(nic));
    assert.deepEqual(
      (await nicsOf(t, vm)).map((n) => n.l3NetworkUuid),
      [env.l3],
    );
    assert.equal((await addressesOf(t, vm)).length, 1, 'its address is released');
    assert.equal((await vmOf(t, vm))?.task, null, 'the VM is free again');
  });

  test('attach to a Stopped VM changes only the database; start plugs every NIC', async () => {
    const vm = await vmIn('Stopped');
    const job = await ok(t, 'POST', '/v1/vm-nics', {
      vmUuid: vm,
      l3NetworkUuid: second.l3,
      ip: `${second.subnet}.200`,
    });
    const [, added] = await nicsOf(t, vm);
    assert.equal(added?.uuid, job.resourceUuid);
    assert.equal(added?.ip, `${second.subnet}.200`);
    assert.equal(added?.hostUuid, null);
    const sent = t.node.services.deps.simulator.networks.commands({ command: 'vm.attach-nic' });
    assert.ok(!sent.some((c) => (c.request as { vmUuid: string }).vmUuid === vm), 'nothing hot-plugged');
    await ok(t, 'POST', `/v1/vms/${vm}/actions/start`, {});
    const host = (await hostOf(vm))!;
    const dhcp = await dhcpNicsOn(t, host);
    for (const n of await nicsOf(t, vm)) {
      assert.equal(n.hostUuid, host);
      assert.ok(dhcp.includes(n.uuid));
    }
  });

  test('detaching the last NIC is allowed; detaching the default makes the next one default', async () => {
    const vm = await vmIn('Running');
    const extra = (await ok(t, 'POST', '/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: second.l3 })).resourceUuid;
    const [first] = await nicsOf(t, vm);
    await ok(t, 'DELETE', `/v1/vm-nics/${first!.uuid}`);
    const [left] = await nicsOf(t, vm);
    assert.deepEqual([left?.uuid, left?.isDefault], [extra, true]);
    await ok(t, 'DELETE', `/v1/vm-nics/${extra}`);
    assert.deepEqual(await nicsOf(t, vm), []);
    assert.deepEqual(await addressesOf(t, vm), []);
  });

  test('change-ip on a Running VM: a given address, then a free one; the old ones are released', async () => {
    const vm = await vmIn('Running');
    const host = (await hostOf(vm))!;
    const [nic] = await nicsOf(t, vm);
    const wanted = `${env.subnet}.222`;
    await ok(t, 'POST', `/v1/vm-nics/${nic!.uuid}/actions/change-ip`, { ip: wanted });
    let [now] = await nicsOf(t, vm);
    assert.equal(now?.ip, wanted);
    assert.deepEqual(
      (await addressesOf(t, vm)).map((a) => a.ip),
      [wanted],
    );
    const entries = t.node.services.deps.simulator.networks
      .host(
        (
          await t.db.db
            .selectFrom('hosts')
            .select('managementIp')
            .where('uuid', '=', host)
            .executeTakeFirstOrThrow()
        ).managementIp,
      )
      .dhcp?.state.flatMap((n) => n.entries);
    assert.equal(
      entries?.find((e) => e.nicUuid === nic!.uuid)?.ip,
      wanted,
      'the host’s DHCP hands out the new one',
    );
    await ok(t, 'POST', `/v1/vm-nics/${nic!.uuid}/actions/change-ip`, {});
    [now] = await nicsOf(t, vm);
    assert.notEqual(now?.ip, wanted);
    assert.deepEqual(
      (await addressesOf(t, vm)).map((a) => a.ip),
      [now?.ip],
    );
  });

  test('change-ip to a taken address fails and changes nothing', async () => {
    const [a, b] = [await vmIn('Stopped'), await vmIn('Stopped')];
    const [nicA] = await nicsOf(t, a);
    const [nicB] = await nicsOf(t, b);
    const before = await addressesOf(t, b);
    const job = await t.admin.job('POST', `/v1/vm-nics/${nicB!.uuid}/actions/change-ip`, { ip: nicA!.ip });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'IP_ADDRESS_TAKEN');
    assert.deepEqual(await addressesOf(t, b), before);
    assert.equal((await nicsOf(t, b))[0]?.ip, nicB!.ip);
    assert.equal((await vmOf(t, b))?.task, null);
  });

  test('set-default moves the default route: only the default NIC’s DHCP entry carries the gateway', async () => {
    const vm = await vmIn('Running');
    const host = (await hostOf(vm))!;
    const extra = (await ok(t, 'POST', '/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: second.l3 })).resourceUuid;
    await ok(t, 'POST', `/v1/vm-nics/${extra}/actions/set-default`, {});
    const nics = await nicsOf(t, vm);
    assert.deepEqual(
      nics.map((n) => [n.uuid === extra, n.isDefault]),
      [
        [false, false],
        [true, true],
      ],
    );
    const address = (
      await t.db.db
        .selectFrom('hosts')
        .select('managementIp')
        .where('uuid', '=', host)
        .executeTakeFirstOrThrow()
    ).managementIp;
    const entries =
      t.node.services.deps.simulator.networks.host(address).dhcp?.state.flatMap((n) => n.entries) ?? [];
    assert.equal(entries.find((e) => e.nicUuid === extra)?.gateway, `${second.subnet}.1`);
    assert.equal(entries.find((e) => e.nicUuid === nics[0]!.uuid)?.gateway, null);
  });

  test('refused at admission: a second NIC on the same L3, an unknown L3, a VM busy or in the wrong state', async () => {
    const vm = await vmIn('Running');
    const same = await t.admin.post('/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: env.l3 });
    assert.equal(same.status, 400);
    assert.match(same.body.error.details.fields[0].problem, /already has NIC/);
    const unknown = await t.admin.post('/v1/vm-nics', {
      vmUuid: vm,
      l3NetworkUuid: '0190a0b0-0000-7000-8000-0000000000aa',
      ip: 'nope',
    });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body.error.details.fields.map((f: any) => f.field).sort(), [
      'ip',
      'l3NetworkUuid',
    ]);
    await ok(t, 'POST', `/v1/vms/${vm}/actions/pause`, {});
    const paused = await t.admin.post('/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: second.l3 });
    assert.equal(paused.status, 409);
    assert.equal(paused.body.error.code, 'VM_INVALID_STATE');
    const gone = await t.admin.post('/v1/vm-nics', {
      vmUuid: '0190a0b0-0000-7000-8000-0000000000ab',
      l3NetworkUuid: second.l3,
    });
    // a VM named in the body: 400 naming the field (the one rule for missing references)
    assert.equal(gone.status, 400);
    assert.equal(gone.body.error.code, 'VM_NOT_FOUND');
  });
});

/** What a rolled-back NIC chain must leave as it was. */
async function snapshot(vm: string) {
  const { updatedAt: _u, ...row } = (await vmOf(t, vm))!;
  const nics = (await nicsOf(t, vm)).map(({ updatedAt: _n, ...n }) => n);
  const addresses = await t.db.db
    .selectFrom('ipAddresses')
    .select(['uuid', 'ip', 'ownerUuid'])
    .orderBy('uuid')
    .execute();
  const dhcp = Object.fromEntries(await Promise.all(env.hosts.map(async (h) => [h, await dhcpNicsOn(t, h)])));
  // a NIC hot-plugged again by a rollback is in the VM as it was: only NICs it did not have count
  const had = new Set(nics.map((n) => n.uuid));
  const plugged = Object.fromEntries(
    await Promise.all(
      env.hosts.map(async (h) => [h, (await pluggedOn(t, h, vm)).filter((n) => !had.has(n))]),
    ),
  );
  return { row, nics, addresses, dhcp, plugged };
}

interface Case {
  kind: string;
  /** the request, given the VM and its (first) NIC; `extra`: a second NIC, for set-default/detach */
  request(vm: string, nic: string, extra: string): [string, string, unknown];
  /** needs a second NIC already attached */
  extra?: boolean;
}

const CASES: Case[] = [
  {
    kind: 'vm-nic.create',
    request: (vm) => ['POST', '/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: second.l3 }],
  },
  { kind: 'vm-nic.delete', request: (_vm, nic) => ['DELETE', `/v1/vm-nics/${nic}`, undefined] },
  {
    kind: 'vm-nic.change-ip',
    request: (_vm, nic) => ['POST', `/v1/vm-nics/${nic}/actions/change-ip`, {}],
  },
  {
    kind: 'vm-nic.set-default',
    extra: true,
    request: (_vm, _nic, extra) => ['POST', `/v1/vm-nics/${extra}/actions/set-default`, {}],
  },
];

const COMMANDS: Array<{ kind: string; command: string }> = [
  { kind: 'vm-nic.create', command: 'vm.attach-nic' },
  { kind: 'vm-nic.create', command: 'dhcp.set-entries' },
  { kind: 'vm-nic.delete', command: 'vm.detach-nic' },
  { kind: 'vm-nic.change-ip', command: 'dhcp.set-entries' },
  { kind: 'vm-nic.set-default', command: 'dhcp.set-entries' },
];

async function runCase(c: Case, state: 'Running' | 'Stopped', point: string, times?: number) {
  const vm = await vmIn('Running');
  const extra = c.extra
    ? (await ok(t, 'POST', '/v1/vm-nics', { vmUuid: vm, l3NetworkUuid: second.l3 })).resourceUuid
    : '';
  if (state === 'Stopped') await ok(t, 'POST', `/v1/vms/${vm}/actions/stop`, {});
  const [nic] = await nicsOf(t, vm);
  const before = await snapshot(vm);
  const [method, path, body] = c.request(vm, nic!.uuid, extra);
  await fault(t, { point, error: { code: 'INJECTED_FAULT' }, ...(times ? { times } : {}) });
  let job: any;
  try {
    job = await t.admin.job(method, path, body);
  } finally {
    await clearFaults(t);
  }
  assert.equal(job.kind, c.kind);
  if (point.endsWith('/claim-vm')) {
    assert.equal(job.state, 'Succeeded', 'done at admission: never reached');
    return;
  }
  assert.equal(job.state, 'Failed', JSON.stringify(job));
  assert.equal(job.error.code, 'INJECTED_FAULT');
  assert.equal(job.error.details?.rollbackFailures, undefined, JSON.stringify(job.error));
  assert.deepEqual(job.steps.done, []);
  assert.deepEqual(await snapshot(vm), before);
}

describe('NIC chains roll back at every step', () => {
  const STEPS: Record<string, string[]> = {
    'vm-nic.create': ['claim-vm', 'allocate-nic', 'apply-network-services', 'plug-on-host', 'release-vm'],
    'vm-nic.delete': ['claim-vm', 'unplug-on-host', 'release-network-services', 'delete-nic'],
    'vm-nic.change-ip': ['claim-vm', 'allocate-ip', 'switch-ip', 'release-old-ip'],
    'vm-nic.set-default': ['claim-vm', 'switch-default', 'release-vm'],
  };

  test('the table covers every registered NIC chain and step', () => {
    const registered = registeredSteps(t.node, ['vm-nic.']);
    assert.deepEqual(Object.fromEntries(registered), STEPS);
    assertTableCovers(
      registered,
      Object.entries(STEPS).flatMap(([kind, steps]) => steps.map((step) => ({ kind, step }))),
    );
  });

  for (const c of CASES) {
    for (const step of STEPS[c.kind]!) {
      for (const state of ['Running', 'Stopped'] as const) {
        test(`${c.kind} / ${step} on a ${state} VM`, () => runCase(c, state, `step:${c.kind}/${step}`));
      }
    }
  }

  for (const { kind, command } of COMMANDS) {
    test(`${kind}: host command ${command} fails (Running VM)`, () =>
      runCase(CASES.find((c) => c.kind === kind)!, 'Running', `command:${command}`, 1));
  }

  test('afterwards the invariants hold', async () => {
    await assertInvariants(t.db.db);
  });
});
