import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import type { AgentCommand, AgentRequest } from '../../contract/agent.js';
import { FaultRegistry } from '../../engine/faults.js';
import { newId } from '../../kernel/ids.js';
import type { HostAddress } from '../port.js';
import { Simulator } from './simulator.js';

describe('a simulated host', () => {
  let t: TestDatabase;
  let sim: Simulator;
  const address = '10.250.0.1';
  const host: HostAddress = { uuid: newId(), managementIp: address, hypervisorType: 'simulator' };
  const vm = newId();
  const send = <C extends AgentCommand>(command: C, request: AgentRequest<C>) =>
    sim.send(host, command, request);

  before(async () => {
    t = await createTestDatabase({ max: 4 });
    sim = new Simulator({ db: t.db, faults: new FaultRegistry() });
    await sim.ensureMachine(address, { cpu: 8, memory: 16 * 1024 ** 3 });
  });
  after(() => t.drop());

  test('powered off answers every command with HOST_UNREACHABLE; powered on answers again', async () => {
    assert.deepEqual(await send('host.capacity', {}), { cpu: 8, memory: 16 * 1024 ** 3 });
    await send('vm.start', { vm: { uuid: vm, name: 'v', cpu: 1, memory: 1024 ** 3, volumes: [], nics: [] } });
    assert.equal((await send('vm.list', {})).vms.length, 1);

    assert.equal(await sim.setPower(address, false), true);
    const calls: Array<() => Promise<unknown>> = [
      () => send('host.ping', {}),
      () => send('host.capacity', {}),
      () => send('host.connect', {}),
      () => send('vm.list', {}),
      () => send('vm.destroy', { vmUuid: vm }),
      () =>
        send('vm.start', { vm: { uuid: vm, name: 'v', cpu: 1, memory: 1024 ** 3, volumes: [], nics: [] } }),
    ];
    for (const call of calls)
      await assert.rejects(call(), (err: { code?: string }) => err.code === 'HOST_UNREACHABLE');

    assert.equal(await sim.setPower(address, true), true);
    assert.deepEqual(await send('vm.list', {}), { vms: [] }, 'its VMs went with the power');
    assert.ok((await send('host.ping', {})).uptimeSeconds >= 0);
  });

  test('a machine resized by ensureMachine answers with its new capacity at once (no stale cache)', async () => {
    await send('host.capacity', {});
    await sim.ensureMachine(address, { cpu: 16 });
    assert.equal((await send('host.capacity', {})).cpu, 16);
  });

  test('no machine at an address: HOST_UNREACHABLE', async () => {
    await assert.rejects(
      sim.send({ ...host, managementIp: '10.250.9.9' }, 'host.ping', {}),
      (err: { code?: string }) => err.code === 'HOST_UNREACHABLE',
    );
  });
});
