/**
 * `GET /v1/vms/{uuid}/serial-log?tail=N` over HTTP on simulated hosts (docs/compute.md "Serial
 * log"): the simulator's synthetic boot log, kept per VM, grows with each start and reboot; the
 * tail is bounded and says when it was cut; a stopped VM's log is read from the host it last ran
 * on; a VM that never ran has none (409); bad `tail` is refused naming it; another account's VM
 * is a 404. (What a real host answers — QEMU's serial file — is test/conformance's and
 * agent/qemu/serial-log.test.ts's.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Api, fieldsOf, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, createVm, ok, runningVm, type VmEnv } from './vm-env.js';

let t: TestNode;
let env: VmEnv;
let tenant: Api;

before(async () => {
  t = await startTestNode();
  env = await buildVmEnv(t, { hosts: 1, prefix: 'serial' });
  await t.admin.job('POST', '/v1/accounts', { name: 'serial-tenant', password: 'tenant-password' });
  tenant = await t.anon.login('serial-tenant', 'tenant-password');
});
after(() => t.stop());

describe('the serial log of a VM', () => {
  test('the host’s log: each start and reboot adds to it; the tail is bounded and says it was cut', async () => {
    const uuid = await runningVm(t, env, { userData: '#cloud-config\n' });
    const first = await t.admin.get(`/v1/vms/${uuid}/serial-log`);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.vmUuid, uuid);
    assert.equal(first.body.hostUuid, env.hosts[0]);
    assert.match(first.body.log, new RegExp(`start of VM ${uuid} on host`));
    assert.match(first.body.log, /config drive with user-data \(14 bytes\)/);
    assert.equal(first.body.size, Buffer.byteLength(first.body.log));
    assert.equal(first.body.truncated, false);

    await ok(t, 'POST', `/v1/vms/${uuid}/actions/reboot`, {});
    const rebooted = (await t.admin.get(`/v1/vms/${uuid}/serial-log`)).body;
    assert.ok(rebooted.log.startsWith(first.body.log), 'the log keeps what it had');
    assert.match(rebooted.log.slice(first.body.log.length), new RegExp(`reboot of VM ${uuid}`));

    const cut = (await t.admin.get(`/v1/vms/${uuid}/serial-log?tail=40`)).body;
    assert.equal(Buffer.byteLength(cut.log), 40);
    assert.equal(cut.truncated, true);
    assert.equal(cut.size, rebooted.size);
    assert.ok(rebooted.log.endsWith(cut.log));

    // stopped: the host it last ran on still has it
    await ok(t, 'POST', `/v1/vms/${uuid}/actions/stop`, { force: true });
    const stopped = await t.admin.get(`/v1/vms/${uuid}/serial-log`);
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    assert.equal(stopped.body.log, rebooted.log);
  });

  test('a VM that never ran has no log; bad tail is refused naming it; another account’s VM is a 404', async () => {
    const job = await createVm(t, env, { strategy: 'create-stopped' });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const never = await t.admin.get(`/v1/vms/${job.resourceUuid}/serial-log`);
    assert.equal(never.status, 409);
    assert.equal(never.body.error.code, 'VM_SERIAL_LOG_UNAVAILABLE');

    const uuid = await runningVm(t, env);
    for (const tail of ['0', '1048577', 'abc', '-5']) {
      const res = await t.admin.get(`/v1/vms/${uuid}/serial-log?tail=${tail}`);
      assert.equal(res.status, 400, `tail=${tail}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(fieldsOf(res.body), ['tail']);
    }
    const other = await tenant.get(`/v1/vms/${uuid}/serial-log`);
    assert.equal(other.status, 404);
    assert.equal(other.body.error.code, 'VM_NOT_FOUND');
    const missing = await t.admin.get('/v1/vms/00000000-0000-4000-8000-000000000000/serial-log');
    assert.equal(missing.status, 404);
  });
});
