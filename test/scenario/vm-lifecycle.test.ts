/**
 * VM operations in detail: graceful stop and the power-off after the stop timeout (or at once
 * with force); change-offering with its quota delta (an increase beyond the quota is refused at
 * once and changes nothing); destroy keeping data volumes that outlive the VM and recover; expunge
 * giving every quota back; the reaper expunging VMs destroyed longer ago than the retention;
 * accounts seeing only their own VMs; queries over VMs.
 */
process.env.NIMBUS_SETTINGS = JSON.stringify({ stopTimeoutSeconds: 1, retentionSeconds: 3600 });

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { VmService } from '../../src/resources/compute/vm/service.js';
import { assertInvariants } from '../support/invariants.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, clearFaults, fault, GiB, simVmOf, type VmEnv, vmOf } from './vm-env.js';

let t: TestNode;
let env: VmEnv;
let tenant: Api;
let tenantUuid: string;
let vms: VmService;

before(async () => {
  t = await startTestNode();
  env = await buildVmEnv(t, { hosts: 2, prefix: 'lc' });
  const acct = await t.admin.job('POST', '/v1/accounts', { name: 'lc-tenant', password: 'tenant-password' });
  tenantUuid = acct.resourceUuid;
  tenant = await t.anon.login('lc-tenant', 'tenant-password');
  vms = t.node.kindServices.find((s) => s.contract.kind === 'vms') as VmService;
});
after(() => t.stop());

async function usage(): Promise<Record<string, number>> {
  const rows = await t.db.db
    .selectFrom('quotas')
    .select(['name', 'used'])
    .where('accountUuid', '=', tenantUuid)
    .execute();
  return Object.fromEntries(rows.filter((r) => r.used !== 0).map((r) => [r.name, r.used]));
}

async function mine(extra: Record<string, unknown> = {}): Promise<string> {
  const job = await tenant.job('POST', '/v1/vms', {
    name: `lc-${Math.random().toString(36).slice(2, 8)}`,
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    ...extra,
  });
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  return job.resourceUuid;
}

async function stoppedBy(uuid: string): Promise<unknown> {
  const events = await t.admin.get(
    `/v1/events?q=resourceUuid=${uuid}&q=type=vm.state.changed&sort=-id&limit=1`,
  );
  return events.body.items[0].data.stoppedBy;
}

describe('stop', () => {
  test('a guest that shuts down in time is stopped gracefully', async () => {
    const uuid = await mine();
    const job = await tenant.job('POST', `/v1/vms/${uuid}/actions/stop`, {});
    assert.equal(job.state, 'Succeeded');
    assert.equal(await stoppedBy(uuid), 'shutdown');
    assert.equal((await simVmOf(t, uuid))?.state, 'Stopped');
  });

  test('a guest that does not shut down within the stop timeout is powered off', async () => {
    const uuid = await mine();
    // the graceful shutdown hangs for 5 s; the stop timeout is 1 s
    await fault(t, { point: 'command:vm.stop', delayMs: 5000, times: 1 });
    try {
      const started = Date.now();
      const job = await tenant.job('POST', `/v1/vms/${uuid}/actions/stop`, {});
      assert.equal(job.state, 'Succeeded', JSON.stringify(job));
      assert.ok(Date.now() - started < 4000, 'it did not wait for the hung shutdown');
      assert.equal(await stoppedBy(uuid), 'power-off');
      assert.equal((await vmOf(t, uuid))?.state, 'Stopped');
    } finally {
      await clearFaults(t);
    }
  });

  test('force powers off at once', async () => {
    const uuid = await mine();
    const job = await tenant.job('POST', `/v1/vms/${uuid}/actions/stop`, { force: true });
    assert.equal(job.state, 'Succeeded');
    assert.equal(await stoppedBy(uuid), 'power-off');
  });
});

describe('change-offering', () => {
  test('the quota follows the size; an increase beyond the quota is refused at once', async () => {
    const uuid = await mine();
    await tenant.job('POST', `/v1/vms/${uuid}/actions/stop`, {});
    const before = await usage();
    const bigger = await tenant.job('POST', `/v1/vms/${uuid}/actions/change-offering`, {
      instanceOfferingUuid: env.medium,
    });
    assert.equal(bigger.state, 'Succeeded', JSON.stringify(bigger));
    assert.deepEqual(
      [bigger.result.cpu, bigger.result.memory, bigger.result.instanceOfferingUuid],
      [2, 4 * GiB, env.medium],
    );
    let now = await usage();
    assert.equal(now['vm.cpu'], before['vm.cpu']! + 1);
    assert.equal(now['vm.memory'], before['vm.memory']! + 3 * GiB);

    const refused = await tenant.post(`/v1/vms/${uuid}/actions/change-offering`, { cpu: 5000 });
    assert.equal(refused.status, 400, 'beyond the contract maximum');
    const over = await tenant.post(`/v1/vms/${uuid}/actions/change-offering`, { cpu: 100 });
    assert.equal(over.status, 409);
    assert.equal(over.body.error.code, 'QUOTA_EXCEEDED');
    assert.deepEqual([(await vmOf(t, uuid))?.cpu, (await vmOf(t, uuid))?.task], [2, null], 'nothing changed');
    assert.deepEqual(await usage(), now);

    const smaller = await tenant.job('POST', `/v1/vms/${uuid}/actions/change-offering`, {
      cpu: 1,
      memory: GiB,
    });
    assert.equal(smaller.state, 'Succeeded');
    assert.equal(smaller.result.instanceOfferingUuid, null);
    now = await usage();
    assert.deepEqual([now['vm.cpu'], now['vm.memory']], [before['vm.cpu'], before['vm.memory']]);
    // it starts with its new size
    const start = await tenant.job('POST', `/v1/vms/${uuid}/actions/start`, {});
    assert.equal(start.state, 'Succeeded');
    assert.equal((await simVmOf(t, uuid))?.memory, GiB);
  });
});

describe('destroy, recover, expunge', () => {
  test('data volumes outlive the VM unless made to go with it; expunge gives every quota back', async () => {
    const base = await usage();
    const keep = await mine({ dataDiskSizes: [2 * GiB] });
    const both = await mine({ dataDiskSizes: [3 * GiB], deleteDataDisksWithVm: true });
    const volumesOf = (vm: string) =>
      t.db.db
        .selectFrom('volumes')
        .select(['uuid', 'type', 'vmUuid', 'deviceId', 'size'])
        .where('vmUuid', '=', vm)
        .orderBy('deviceId')
        .execute();
    const kept = (await volumesOf(keep)).find((v) => v.type === 'Data')!;
    assert.equal(kept.deviceId, 1);
    for (const uuid of [keep, both])
      assert.equal((await tenant.job('DELETE', `/v1/vms/${uuid}`)).state, 'Succeeded');
    assert.deepEqual(
      (await volumesOf(keep)).map((v) => v.type),
      ['Root'],
      'the data volume was detached',
    );
    const detached = await t.db.db
      .selectFrom('volumes')
      .selectAll()
      .where('uuid', '=', kept.uuid)
      .executeTakeFirstOrThrow();
    assert.deepEqual([detached.vmUuid, detached.state], [null, 'Ready']);
    assert.deepEqual(
      (await volumesOf(both)).map((v) => v.type),
      ['Root', 'Data'],
      'deleted with the VM: still attached',
    );
    assert.equal(await simVmOf(t, keep), undefined, 'gone from the hypervisor');

    // recover, start, destroy again
    const recovered = await tenant.job('POST', `/v1/vms/${keep}/actions/recover`, {});
    assert.deepEqual([recovered.result.state, recovered.result.destroyedAt], ['Stopped', null]);
    assert.equal((await tenant.job('POST', `/v1/vms/${keep}/actions/start`, {})).state, 'Succeeded');
    assert.equal((await tenant.job('DELETE', `/v1/vms/${keep}`)).state, 'Succeeded');

    for (const uuid of [keep, both])
      assert.equal((await tenant.job('POST', `/v1/vms/${uuid}/actions/expunge`, {})).state, 'Succeeded');
    for (const uuid of [keep, both]) assert.equal(await vmOf(t, uuid), undefined);
    assert.equal((await volumesOf(both)).length, 0);
    assert.ok(
      await t.db.db.selectFrom('volumes').select('uuid').where('uuid', '=', kept.uuid).executeTakeFirst(),
      'the kept volume stays',
    );
    const now = await usage();
    // only the kept data volume still counts: it is the volumes kind's to expunge now
    assert.equal(now['vm.num'] ?? 0, base['vm.num'] ?? 0);
    assert.equal(now['vm.cpu'] ?? 0, base['vm.cpu'] ?? 0);
    assert.equal(now['volume.data.num'] ?? 0, (base['volume.data.num'] ?? 0) + 1);
    assert.equal(now['volume.capacity'] ?? 0, (base['volume.capacity'] ?? 0) + 2 * GiB);
    await assertInvariants(t.db.db);
  });

  test('the reaper expunges VMs destroyed longer ago than the retention, and only those', async () => {
    const old = await mine();
    const fresh = await mine();
    for (const uuid of [old, fresh]) await tenant.job('DELETE', `/v1/vms/${uuid}`);
    await t.db.db
      .updateTable('vms')
      .set({ destroyedAt: sql<Date>`now() - interval '2 hours'` })
      .where('uuid', '=', old)
      .execute();
    assert.equal(await vms.reap(), 1);
    for (let i = 0; i < 50 && (await vmOf(t, old)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await vmOf(t, old), undefined, 'expunged');
    assert.equal((await vmOf(t, fresh))?.state, 'Destroyed', 'still within its retention');
    const jobs = await t.admin.get(`/v1/jobs?q=resourceUuid=${old}&q=kind=vm.expunge`);
    assert.equal(jobs.body.items[0].state, 'Succeeded');
  });
});

describe('accounts and queries', () => {
  test('another account sees none of a tenant’s VMs and can do nothing to them', async () => {
    const uuid = await mine();
    await t.admin.job('POST', '/v1/accounts', { name: 'lc-other', password: 'tenant-password' });
    const other = await t.anon.login('lc-other', 'tenant-password');
    assert.equal((await other.get(`/v1/vms/${uuid}`)).status, 404);
    assert.equal((await other.post(`/v1/vms/${uuid}/actions/stop`, {})).status, 404);
    assert.equal((await other.call('DELETE', `/v1/vms/${uuid}`)).status, 404);
    assert.equal((await other.get('/v1/vms?count=true')).body.total, 0);
    assert.equal((await t.admin.get(`/v1/vms/${uuid}`)).status, 200, 'the admin sees every VM');
  });

  test('update renames; queries filter by state and follow relations', async () => {
    const uuid = await mine();
    const renamed = await tenant.job('PATCH', `/v1/vms/${uuid}`, { name: 'web-1', description: 'front end' });
    assert.equal(renamed.state, 'Succeeded');
    assert.equal(renamed.result.name, 'web-1');
    const running = await tenant.get('/v1/vms?q=state=Running&q=name=web-1');
    assert.equal(running.body.items.length, 1);
    const cluster = await t.db.db
      .selectFrom('clusters')
      .select('name')
      .where('uuid', '=', env.cluster)
      .executeTakeFirstOrThrow();
    const nested = await t.admin.get(`/v1/vms?q=host.cluster.name=${cluster.name}&q=name=web-1`);
    assert.equal(nested.status, 200, JSON.stringify(nested.body));
    assert.equal(nested.body.items.length, 1);
    const byOffering = await tenant.get(`/v1/vms?q=instanceOffering.name=lc-small&q=name=web-1`);
    assert.equal(byOffering.body.items.length, 1);
  });
});
