// The conformance suite against the simulator, in-process (part of `npm test`): the same
// scenarios agent.real.test.ts runs against a real nimbus-agent.
import type { AgentCommand } from '../../src/contract/agent.js';
import { Simulator } from '../../src/drivers/simulator/simulator.js';
import { FaultRegistry } from '../../src/engine/faults.js';
import { toErrorBody } from '../../src/kernel/errors.js';
import { newId } from '../../src/kernel/ids.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import type { HostUnderTest, Outcome } from './host-under-test.js';
import { conformanceSuite } from './suite.js';

let t: TestDatabase | undefined;

conformanceSuite('simulator', {
  skip: false,
  timeoutMs: 30_000,
  async setup(): Promise<HostUnderTest> {
    t = await createTestDatabase({ max: 4 });
    const sim = new Simulator({ db: t.db, faults: new FaultRegistry() });
    const address = '10.250.7.1';
    await sim.ensureMachine(address, { cpu: 8, memory: 16 * 1024 ** 3 });
    const host = { uuid: newId(), managementIp: address, hypervisorType: 'simulator' };
    return {
      kind: 'simulator',
      fixtures: {
        image: { url: 'http://images.example/conformance.qcow2?size=67108864' },
        storage: { uuid: newId(), type: 'local', url: '/var/lib/nimbus/ps-conformance' },
        uplinks: ['eth1', 'eth2'],
        bridges: ['br_eth1', 'br_eth2'],
        subnet: '10.91.0.0',
      },
      async send(command, body): Promise<Outcome> {
        try {
          // the simulator is called as the management node calls it, malformed bodies included
          const response = await sim.send(host, command as AgentCommand, body as never);
          return { ok: true, body: response as Record<string, unknown> };
        } catch (err) {
          // a crash (TypeError on a malformed body) is an Internal answer, as the agent gives
          return { ok: false, error: toErrorBody(err) };
        }
      },
      guestReady: async () => {},
    };
  },
  async teardown() {
    await t?.drop();
  },
});
