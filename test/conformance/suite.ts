/**
 * The host-command conformance suite: every scenario, in order, against one HostUnderTest.
 * A runner (simulator.test.ts, agent.real.test.ts) gives the host; the scenarios are written once,
 * so the simulator and the real agent are held to the same assertions. Scenarios run one after
 * another on the one host (node:test runs a file's tests in order) and each removes its VMs, so
 * a real host never runs more than one guest of this suite at a time.
 */
import { after, before, describe } from 'node:test';
import type { BridgeSpec } from '../../src/contract/agent.js';
import type { HostUnderTest } from './host-under-test.js';
import { versions } from './host-under-test.js';
import { hostScenarios } from './scenarios-host.js';
import { networkScenarios } from './scenarios-network.js';
import { storageScenarios } from './scenarios-storage.js';
import { vmScenarios } from './scenarios-vm.js';

export interface SuiteContext {
  host(): HostUnderTest;
  /** a network-command version newer than every one sent before on this host */
  version(): number;
  /** the two bridges every scenario relies on (guest, public): a full-state list keeps them */
  bridges(): BridgeSpec[];
}

export interface SuiteOptions {
  /** false, or why the suite cannot run here */
  skip: string | false;
  /** per scenario (real guests boot in tens of seconds under TCG) */
  timeoutMs: number;
  setup(): Promise<HostUnderTest>;
  teardown(): Promise<void>;
}

export function conformanceSuite(name: string, o: SuiteOptions): void {
  let host: HostUnderTest | undefined;
  const ctx: SuiteContext = {
    host: () => {
      if (host === undefined) throw new Error('the host under test was not set up');
      return host;
    },
    version: versions(),
    bridges: () => {
      const { uplinks, bridges } = ctx.host().fixtures;
      return uplinks.map((uplink, i) => ({
        l2NetworkUuid: `00000000-0000-4000-8000-00000000000${i}`,
        type: 'no-vlan' as const,
        bridgeName: bridges[i]!,
        physicalInterface: uplink,
        vlan: null,
        vni: null,
        mtu: 1500,
      }));
    },
  };
  describe(`host-command conformance: ${name}`, { skip: o.skip, timeout: o.timeoutMs * 20 }, () => {
    before(async () => {
      host = await o.setup();
    });
    after(() => o.teardown());
    hostScenarios(ctx, o.timeoutMs);
    networkScenarios(ctx, o.timeoutMs);
    storageScenarios(ctx, o.timeoutMs);
    vmScenarios(ctx, o.timeoutMs);
  });
}
