/**
 * End to end on real hosts (issue 9, "What must be shown"), through the public API only: two
 * "hypervisor hosts" are network namespaces of this machine joined by an underlay, each running
 * the real nimbus-agent (dist/nimbus-agent.mjs); the management node is a test node in this
 * process. Guests are real QEMU (TCG) machines booting the test guest image from their disk.
 * Run with `npm run test:real -- kvm-hosts` (root, QEMU installed). At most 2 guests run at once.
 */
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';
import {
  addHost,
  buildCloud,
  type Cloud,
  flatVxlanL3,
  guestImageUrl,
  nicOf,
  ok,
  vmOf,
  waitSerial,
  waitVmState,
} from './support/cloud.js';
import { KvmLab, type LabHost, sh, skipReason, waitFor } from './support/kvm-lab.js';

const skip = skipReason();
const VNI = 5000 + Math.floor(Math.random() * 4000) * 10;

describe('kvm hosts end to end', { skip }, () => {
  let lab: KvmLab;
  let t: TestNode;
  let cloud: Cloud;
  let h1: LabHost;
  let h2: LabHost;
  let net: Awaited<ReturnType<typeof flatVxlanL3>>;
  let closeImage: () => void = () => {};
  let vm1 = '';

  before(async () => {
    // the reconciler runs often so that drift (a killed QEMU, a killed agent) shows within seconds
    process.env.NIMBUS_SETTINGS = JSON.stringify({ reconcileIntervalSeconds: 2, stopTimeoutSeconds: 20 });
    lab = new KvmLab();
    h1 = lab.addHost();
    h2 = lab.addHost();
    await h1.startAgent();
    await h2.startAgent();
    t = await startTestNode();
    const image = await guestImageUrl(lab);
    closeImage = () => image.server.close();
    cloud = await buildCloud(t, lab, image.url);
  });

  after(async () => {
    closeImage();
    await t?.stop().catch(() => {});
    await lab?.destroy();
    delete process.env.NIMBUS_SETTINGS;
  });

  test('a kvm host with the wrong secret is refused by its agent and rolled back', async () => {
    const job = await addHost(t, cloud, h1, 'not-the-secret-of-this-agent');
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'HOST_AGENT_SECRET_REJECTED', JSON.stringify(job.error));
    const hosts = await t.admin.get(`/v1/hosts?q=managementIp=${h1.ip}`);
    assert.equal(hosts.body.items.length, 0, 'the host record is rolled back');
  });

  test('a kvm host without a secret is refused at once, naming the field', async () => {
    const res = await t.admin.post('/v1/hosts', {
      name: 'no-secret',
      clusterUuid: cloud.cluster,
      managementIp: h1.ip,
    });
    assert.equal(res.status, 400);
    assert.deepEqual(
      res.body.error.details.fields.map((f: { field: string }) => f.field),
      ['agentSecret'],
    );
  });

  test('two kvm hosts are added: real capacity, accelerator and QEMU version; the secret is never shown', async () => {
    for (const h of [h1, h2]) {
      const job = await addHost(t, cloud, h, lab.secret);
      assert.equal(job.state, 'Succeeded', JSON.stringify(job.error));
      const host = (await t.admin.get(`/v1/hosts/${job.resourceUuid}`)).body;
      assert.equal(host.status, 'Connected');
      assert.equal(host.hypervisorType, 'kvm');
      assert.equal(host.accelerator, 'tcg');
      assert.match(host.hypervisorVersion, /\d+\.\d+/);
      assert.equal(host.cpuTotal, cpus().length);
      assert.ok(host.memoryTotal > 1024 ** 3, `memory ${host.memoryTotal}`);
      const everything = JSON.stringify([
        host,
        (await t.admin.get(`/v1/hosts?q=uuid=${host.uuid}`)).body,
        (await t.admin.get(`/v1/jobs/${job.uuid}`)).body,
        (await t.admin.get(`/v1/events?q=resourceUuid=${host.uuid}`)).body,
      ]);
      assert.ok(!everything.includes(lab.secret), 'the agent secret appears in no answer');
      assert.ok(!('agentSecret' in host));
    }
  });

  test('milestone 1: a VM boots from the image and gets exactly the IP Nimbus allocated, from our dnsmasq', async () => {
    net = await flatVxlanL3(t, lab, cloud, VNI);
    const job = await ok(t.admin, 'POST', '/v1/vms', {
      name: `vm1-${lab.tag}`,
      imageUuid: cloud.image,
      instanceOfferingUuid: cloud.offering,
      l3NetworkUuids: [net.l3],
      hostUuid: cloud.hosts.get(h1),
    });
    vm1 = job.resourceUuid;
    const vm = await vmOf(t.admin, vm1);
    assert.equal(vm.state, 'Running');
    assert.equal(vm.hostUuid, cloud.hosts.get(h1));
    const nic = await nicOf(t.admin, vm1);
    await waitSerial(h1, vm1, /NIMBUS-GUEST-BOOTED/);
    const lease = await waitSerial(h1, vm1, /NIMBUS-DHCP-OK ip=(\S+)/);
    assert.equal(lease[1], nic.ip, `the guest's lease is the address Nimbus allocated (${nic.ip})`);
    assert.ok(h1.qemuPid(vm1), 'its QEMU runs on host 1');
  });
});

export { sh, vmOf, waitFor, waitVmState };
