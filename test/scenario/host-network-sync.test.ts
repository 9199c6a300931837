/**
 * HostNetworkSync (src/resources/network/host-sync.ts): full-state network commands to hosts,
 * coalesced per host in a node, versioned so that an older state never replaces a newer one,
 * re-sent on reconnect. What the NICs put into that state is tested with the NICs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildInfra, startTestNode, type TestNode } from '../support/node.js';

describe('host network sync', () => {
  let t: TestNode;
  let hosts: string[];
  const ipOf = async (uuid: string) =>
    (
      await t.db.db
        .selectFrom('hosts')
        .select('managementIp')
        .where('uuid', '=', uuid)
        .executeTakeFirstOrThrow()
    ).managementIp;

  before(async () => {
    t = await startTestNode();
    hosts = (await buildInfra(t.admin, 2, 'hns')).hosts;
  });
  after(() => t.stop());

  const deps = () => t.node.services.deps;

  test('concurrent requests for one host are served by a few runs, each with a newer version', async () => {
    const ip = await ipOf(hosts[0]!);
    const sim = deps().simulator.networks;
    const from = sim.lastSeq();
    await Promise.all(Array.from({ length: 50 }, () => deps().network.sync([hosts[0]!])));
    const runs = sim.commands({ address: ip, command: 'sg.apply', afterSeq: from });
    assert.ok(runs.length >= 1 && runs.length <= 3, `50 requests coalesced into ${runs.length} runs`);
    const versions = runs.map((c) => (c.request as { version: number }).version);
    assert.deepEqual(
      versions,
      [...versions].sort((a, b) => a - b),
    );
    assert.ok(runs.every((c) => c.applied));
    // every part of the host's state carries the last version
    const state = sim.host(ip);
    const last = versions.at(-1)!;
    assert.equal(state.bridges?.version, last);
    assert.equal(state.dhcp?.version, last);
    assert.equal(state.sg?.version, last);
  });

  test('a request made while a run is in flight waits for a run that started after it', async () => {
    const ip = await ipOf(hosts[1]!);
    const sim = deps().simulator.networks;
    const first = deps().network.sync([hosts[1]!]);
    const second = deps().network.sync([hosts[1]!]);
    await first;
    const afterFirst = sim.host(ip).sg?.version ?? 0;
    await second;
    assert.ok((sim.host(ip).sg?.version ?? 0) > afterFirst || afterFirst > 0);
    const runs = sim.commands({ address: ip, command: 'sg.apply' });
    assert.ok(runs.length >= 2, 'the second request got its own run');
  });

  test('a host keeps the newer state when an older one arrives late', async () => {
    const ip = await ipOf(hosts[0]!);
    await deps().network.sync([hosts[0]!]);
    const current = deps().simulator.networks.host(ip).sg!.version;
    const host = { uuid: hosts[0]!, managementIp: ip, hypervisorType: 'simulator' };
    const stale = await deps()
      .drivers.for('simulator')
      .send(host, 'sg.apply', { version: current - 1, nics: [] });
    assert.equal(stale.applied, false);
    assert.equal(deps().simulator.networks.host(ip).sg!.version, current);
  });

  test('an unreachable host fails the sync, or is only logged when best effort; reconnect re-sends everything', async () => {
    const ip = await ipOf(hosts[1]!);
    assert.equal((await t.admin.post(`/v1/simulator/hosts/${ip}/actions/power-off`)).status, 200);
    await assert.rejects(deps().network.sync([hosts[1]!]), /HOST_UNREACHABLE|does not answer|powered off/);
    await deps().network.sync([hosts[1]!], { bestEffort: true });
    assert.equal(deps().simulator.networks.host(ip).sg, undefined, 'a powered-off host lost its state');
    assert.equal((await t.admin.post(`/v1/simulator/hosts/${ip}/actions/power-on`)).status, 200);
    const job = await t.admin.job('POST', `/v1/hosts/${hosts[1]}/actions/reconnect`, {});
    assert.equal(job.state, 'Succeeded', JSON.stringify(job.error));
    const state = deps().simulator.networks.host(ip);
    assert.ok(state.bridges && state.dhcp && state.sg, 'reconnect sent the whole configuration');
    const seen = await t.admin.get(`/v1/simulator/network/hosts/${ip}`);
    assert.equal(seen.status, 200);
    assert.equal(seen.body.sg.version, state.sg!.version);
  });
});
