/**
 * A kvm host's IPMI credentials (host HA's fence through its BMC; docs/hosts.md "Host HA"): kvm
 * only and all three together, refused naming the fields with nothing changed; set and removed
 * by PATCH; the password never in a job, an event or the host as read. A stand-in nimbus-agent
 * (the agent's own HTTP server with three handlers) serves the kvm host's create.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createAgentServer } from '../../src/agent/server.js';
import { fieldsOf, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, GiB, ok, type VmEnv } from './vm-env.js';

let t: TestNode;
let env: VmEnv;

before(async () => {
  t = await startTestNode({ settings: { reconcileIntervalSeconds: 3600 } });
  env = await buildVmEnv(t, { hosts: 1, prefix: 'hi' });
});
after(() => t.stop());

const hostOf = (uuid: string) =>
  t.db.db.selectFrom('hosts').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();

describe('IPMI credentials', () => {
  test('kvm only, all three together, refused naming the fields', async () => {
    const sim = await t.admin.post('/v1/hosts', {
      name: 'ha-ipmi-sim',
      clusterUuid: env.cluster,
      managementIp: '10.250.0.1',
      ipmiAddress: '10.250.1.1',
    });
    assert.equal(sim.status, 400);
    assert.deepEqual(fieldsOf(sim.body), ['ipmiAddress']);
    const kvm = (
      await ok(t, 'POST', '/v1/clusters', {
        name: 'ha-kvm',
        zoneUuid: env.zone,
        hypervisorType: 'kvm',
        hostHa: true,
      })
    ).resourceUuid;
    const half = await t.admin.post('/v1/hosts', {
      name: 'ha-ipmi-half',
      clusterUuid: kvm,
      managementIp: '127.0.0.1',
      agentSecret: 'an-agent-secret-of-enough-length',
      ipmiAddress: '10.250.1.1',
    });
    assert.equal(half.status, 400);
    assert.deepEqual(fieldsOf(half.body), ['ipmiPassword', 'ipmiUsername']);
  });

  test('the password is never in the job, its events or the host', async () => {
    const kvm = (
      await t.db.db
        .selectFrom('clusters')
        .select('uuid')
        .where('name', '=', 'ha-kvm')
        .executeTakeFirstOrThrow()
    ).uuid;
    const password = 'bmc-password-that-must-not-leak';
    // no agent answers on port 1: the create fails at connect and is rolled back
    const job = await t.admin.job('POST', '/v1/hosts', {
      name: 'ha-ipmi-full',
      clusterUuid: kvm,
      managementIp: '127.0.0.1',
      agentPort: 1,
      agentSecret: 'an-agent-secret-of-enough-length',
      ipmiAddress: '10.250.1.1',
      ipmiUsername: 'fence',
      ipmiPassword: password,
    });
    assert.equal(job.state, 'Failed', JSON.stringify(job));
    assert.ok(!JSON.stringify(job).includes(password));
    const rows = await t.db.db.selectFrom('jobs').selectAll().where('uuid', '=', job.uuid).execute();
    assert.ok(!JSON.stringify(rows).includes(password));
    const events = await t.db.db
      .selectFrom('events')
      .selectAll()
      .where('resourceUuid', '=', job.resourceUuid)
      .execute();
    assert.ok(events.length > 0);
    assert.ok(!JSON.stringify(events).includes(password));
    // the host is gone with its credentials (deleted with it)
    assert.equal(
      (
        await t.db.db
          .selectFrom('hostFenceCredentials')
          .select('hostUuid')
          .where('hostUuid', '=', job.resourceUuid)
          .execute()
      ).length,
      0,
    );
  });

  test('PATCH sets or removes them on a kvm host, never echoing the password; bad input changes nothing', async () => {
    // a stand-in nimbus-agent: enough of the protocol for the host create chain
    const secret = 'an-agent-secret-of-enough-length';
    const agent = createAgentServer({
      secret,
      log: pino({ level: 'silent' }),
      handlers: {
        'host.connect': async () => ({
          hypervisorType: 'kvm',
          hypervisorVersion: 'QEMU 7.2',
          hostname: 'fake',
          cpuModel: 'x',
          accelerator: 'tcg',
        }),
        'host.capacity': async () => ({ cpu: 8, memory: 16 * GiB }),
        'vm.list': async () => ({ vms: [] }),
      },
    });
    await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
    try {
      const kvm = (
        await t.db.db
          .selectFrom('clusters')
          .select('uuid')
          .where('name', '=', 'ha-kvm')
          .executeTakeFirstOrThrow()
      ).uuid;
      const created = await t.admin.job('POST', '/v1/hosts', {
        name: 'ha-kvm-host',
        clusterUuid: kvm,
        managementIp: '127.0.0.1',
        agentPort: (agent.address() as AddressInfo).port,
        agentSecret: secret,
      });
      assert.equal(created.state, 'Succeeded', JSON.stringify(created));
      const host = created.resourceUuid as string;
      const creds = () =>
        t.db.db.selectFrom('hostFenceCredentials').selectAll().where('hostUuid', '=', host).execute();
      assert.deepEqual(await creds(), []);

      const half = await t.admin.patch(`/v1/hosts/${host}`, { name: 'renamed', ipmiAddress: '10.250.1.2' });
      assert.equal(half.status, 400);
      assert.deepEqual(fieldsOf(half.body), ['ipmiPassword', 'ipmiUsername']);
      assert.equal((await hostOf(host)).name, 'ha-kvm-host', 'nothing changed');

      const password = 'a-new-bmc-password';
      const set = await t.admin.job('PATCH', `/v1/hosts/${host}`, {
        ipmiAddress: '10.250.1.2',
        ipmiUsername: 'fence',
        ipmiPassword: password,
      });
      assert.equal(set.state, 'Succeeded', JSON.stringify(set));
      assert.deepEqual(
        (await creds()).map((c) => [c.address, c.username, c.password]),
        [['10.250.1.2', 'fence', password]],
      );
      const job = await t.db.db.selectFrom('jobs').selectAll().where('uuid', '=', set.uuid).execute();
      const events = await t.db.db
        .selectFrom('events')
        .selectAll()
        .where('resourceUuid', '=', host)
        .execute();
      const shown = (await t.admin.get(`/v1/hosts/${host}`)).body;
      for (const seen of [set, job, events, shown]) assert.ok(!JSON.stringify(seen).includes(password));

      const removed = await t.admin.job('PATCH', `/v1/hosts/${host}`, { removeIpmi: true });
      assert.equal(removed.state, 'Succeeded');
      assert.deepEqual(await creds(), []);

      const onSim = await t.admin.patch(`/v1/hosts/${env.hosts[0]}`, { removeIpmi: true });
      assert.equal(onSim.status, 400);
      assert.deepEqual(fieldsOf(onSim.body), ['removeIpmi']);
      assert.equal((await t.admin.job('DELETE', `/v1/hosts/${host}`)).state, 'Succeeded');
    } finally {
      agent.close();
    }
  });
});
