// The appliance wrapper of the agent's vm.* handlers on its own (no root): fake router
// namespaces and a fake QEMU part record what they are asked; the records live in a temp dir.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { VmSpec } from '../../contract/agent.js';
import type { AgentHandlers, AgentPeerHandlers } from '../handlers.js';
import type { RouterNamespaces } from '../network/index.js';
import { applianceState, UNSUPPORTED, withAppliances } from './index.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(stateDir = mkdtempSync(join(tmpdir(), 'nimbus-appliance-'))) {
  dirs.push(stateDir);
  const calls: string[] = [];
  const present = new Set<string>();
  const routers: RouterNamespaces = {
    ensure: async (u) => {
      calls.push(`ensure ${u}`);
      present.add(u);
    },
    remove: async (u) => {
      calls.push(`remove ${u}`);
      present.delete(u);
    },
    reset: async (u) => {
      calls.push(`reset ${u}`);
      present.add(u);
    },
    present: async (u) => present.has(u),
  };
  const qemuVm = randomUUID();
  const inner: AgentHandlers & AgentPeerHandlers = {
    'vm.start': async ({ vm }) => {
      calls.push(`qemu start ${vm.uuid}`);
      return { powerState: 'Running' };
    },
    'vm.list': async () => ({ vms: [{ uuid: qemuVm, state: 'Running' }] }),
    'vm.destroy': async ({ vmUuid }) => {
      calls.push(`qemu destroy ${vmUuid}`);
      return {};
    },
    'vm.pause': async ({ vmUuid }) => {
      calls.push(`qemu pause ${vmUuid}`);
      return {};
    },
    'router.apply-config': async ({ config }) => {
      calls.push(`apply ${config.routerUuid}`);
      return { applied: true };
    },
    'vm.prepare-migration': async () => ({ uri: 'tcp:x:1' }),
  };
  const log = { info() {} };
  const h = withAppliances(inner, { stateDir, routers, log });
  return {
    h,
    calls,
    present,
    qemuVm,
    stateDir,
    restart: () => withAppliances(inner, { stateDir, routers, log }),
  };
}

function spec(uuid: string, routerUuid?: string): VmSpec {
  return {
    uuid,
    name: 'vr',
    cpu: 1,
    memory: 256 * 1024 * 1024,
    volumes: [],
    nics: [],
    ...(routerUuid ? { appliance: { type: 'virtual-router' as const, routerUuid } } : {}),
  };
}

const config = (routerUuid: string) => ({ routerUuid }) as never;

async function code(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: { code?: string }) => e.code ?? String(e),
  );
}

test('an appliance VM starts as its router namespace: recorded, no QEMU, listed Running', async () => {
  const { h, calls, qemuVm, stateDir } = setup();
  const vm = randomUUID();
  const router = randomUUID();
  assert.deepEqual(await h['vm.start']!({ vm: spec(vm, router) }), { powerState: 'Running' });
  assert.deepEqual(await h['vm.start']!({ vm: spec(vm, router) }), { powerState: 'Running' }, 'idempotent');
  assert.deepEqual(calls, [`ensure ${router}`, `ensure ${router}`]);
  assert.ok(existsSync(join(stateDir, 'appliances', `${vm}.json`)));
  const { vms } = await h['vm.list']!({});
  assert.deepEqual(
    vms.sort((a, b) => a.uuid.localeCompare(b.uuid)),
    [
      { uuid: qemuVm, state: 'Running' },
      { uuid: vm, state: 'Running' },
    ].sort((a, b) => a.uuid.localeCompare(b.uuid)),
  );
  // an ordinary VM still goes to QEMU
  const plain = randomUUID();
  await h['vm.start']!({ vm: spec(plain) });
  assert.equal(calls.at(-1), `qemu start ${plain}`);
});

test('a bad appliance is refused naming the field, and nothing is made', async () => {
  const { h, calls, stateDir } = setup();
  const bad = { ...spec(randomUUID()), appliance: { type: 'load-balancer', routerUuid: '../x' } } as never;
  assert.equal(await code(h['vm.start']!({ vm: bad })), 'HOST_APPLIANCE_INVALID');
  assert.deepEqual(calls, []);
  assert.equal(existsSync(join(stateDir, 'appliances')), false);
});

test('stop removes the router and keeps the record (Stopped); configs are not applied while stopped', async () => {
  const { h, calls } = setup();
  const vm = randomUUID();
  const router = randomUUID();
  await h['vm.start']!({ vm: spec(vm, router) });
  await h['vm.stop']!({ vmUuid: vm, force: false });
  await h['vm.stop']!({ vmUuid: vm, force: true });
  assert.deepEqual(calls, [`ensure ${router}`, `remove ${router}`, `remove ${router}`]);
  assert.deepEqual((await h['vm.list']!({})).vms.find((v) => v.uuid === vm)?.state, 'Stopped');
  assert.deepEqual(await h['router.apply-config']!({ version: 9, config: config(router) }), {
    applied: false,
  });
  assert.equal(await code(h['vm.reboot']!({ vmUuid: vm })), 'AGENT_VM_NOT_RUNNING');
  // started again: configs apply
  await h['vm.start']!({ vm: spec(vm, router) });
  assert.deepEqual(await h['router.apply-config']!({ version: 10, config: config(router) }), {
    applied: true,
  });
  assert.equal(calls.at(-1), `apply ${router}`);
  // a router without an appliance here (the network part's own tests) applies as before
  const other = randomUUID();
  assert.deepEqual(await h['router.apply-config']!({ version: 1, config: config(other) }), { applied: true });
});

test('reboot remakes the namespace empty; destroy removes it and forgets the VM', async () => {
  const { h, calls, stateDir } = setup();
  const vm = randomUUID();
  const router = randomUUID();
  await h['vm.start']!({ vm: spec(vm, router) });
  await h['vm.reboot']!({ vmUuid: vm });
  assert.equal(calls.at(-1), `reset ${router}`);
  await h['vm.destroy']!({ vmUuid: vm });
  assert.deepEqual(calls.slice(-2), [`remove ${router}`, `qemu destroy ${vm}`], 'and any QEMU definition');
  assert.equal(existsSync(join(stateDir, 'appliances', `${vm}.json`)), false);
  assert.equal(
    (await h['vm.list']!({})).vms.some((v) => v.uuid === vm),
    false,
  );
  // a second destroy finds no appliance: the QEMU part answers (a missing VM is success)
  await h['vm.destroy']!({ vmUuid: vm });
  assert.deepEqual(calls.slice(-3), [`remove ${router}`, `qemu destroy ${vm}`, `qemu destroy ${vm}`]);
});

test('the namespace gone (host rebooted) lists the appliance Stopped; a restarted agent finds it again', async () => {
  const { h, present, restart } = setup();
  const vm = randomUUID();
  const router = randomUUID();
  await h['vm.start']!({ vm: spec(vm, router) });
  present.delete(router);
  assert.equal((await h['vm.list']!({})).vms.find((v) => v.uuid === vm)?.state, 'Stopped');
  present.add(router);
  const again = restart();
  assert.equal((await again['vm.list']!({})).vms.find((v) => v.uuid === vm)?.state, 'Running');
});

test('pause, resume, hot-plug and migration of an appliance are refused by name; other VMs pass', async () => {
  const { h, calls } = setup();
  const vm = randomUUID();
  const router = randomUUID();
  await h['vm.start']!({ vm: spec(vm, router) });
  for (const command of UNSUPPORTED) {
    const handler = (h as Record<string, (r: unknown) => Promise<unknown>>)[command]!;
    const err = await handler({ vmUuid: vm, target: 'x', volumeUuid: 'v', nicUuid: 'n', size: 1 }).then(
      () => undefined,
      (e: { code: string; message: string }) => e,
    );
    assert.equal(err?.code, 'HOST_APPLIANCE_UNSUPPORTED', command);
    assert.match(
      err!.message,
      new RegExp(`${command}: vm ${vm} is the appliance of virtual router ${router}`),
    );
  }
  assert.equal(
    await code(h['vm.prepare-migration']!({ vm: spec(vm, router) })),
    'HOST_APPLIANCE_UNSUPPORTED',
  );
  const plain = randomUUID();
  await h['vm.pause']!({ vmUuid: plain });
  assert.equal(calls.at(-1), `qemu pause ${plain}`);
  assert.deepEqual(await h['vm.prepare-migration']!({ vm: spec(plain) }), { uri: 'tcp:x:1' });
  // a command no part handles stays unknown
  assert.equal(await code(h['vm.resume']!({ vmUuid: plain })), 'AGENT_COMMAND_UNKNOWN');
});

test('applianceState: Running only when asked to run and the namespace exists', () => {
  const r = { vmUuid: 'v', routerUuid: 'r' };
  assert.equal(applianceState({ ...r, state: 'Running' }, true), 'Running');
  assert.equal(applianceState({ ...r, state: 'Running' }, false), 'Stopped');
  assert.equal(applianceState({ ...r, state: 'Stopped' }, true), 'Stopped');
  assert.equal(applianceState({ ...r, state: 'Stopped' }, false), 'Stopped');
});
