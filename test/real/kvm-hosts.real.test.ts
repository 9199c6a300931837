/**
 * End to end on real hosts (issue 9, "What must be shown"), through the public API only: two
 * "hypervisor hosts" are network namespaces of this machine joined by an underlay, each running
 * the real nimbus-agent (dist/nimbus-agent.mjs); the management node is a test node in this
 * process. Guests are real QEMU (TCG) machines booting the test guest image from their disk.
 * Run with `npm run test:real -- kvm-hosts` (root, QEMU installed). At most 2 guests run at once.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { cliRunner } from '../support/cli.js';
import { ADMIN_PASSWORD, startTestNode, type TestNode } from '../support/node.js';
import {
  addHost,
  buildCloud,
  type Cloud,
  flatVxlanL3,
  guestImageUrl,
  MiB,
  nicOf,
  ok,
  vmOf,
  waitSerial,
  waitVmState,
} from './support/cloud.js';
import { KvmLab, type LabHost, skipReason, waitFor } from './support/kvm-lab.js';
import { attachProbe, curl, detachProbe, leftovers, pingFor, pingOk } from './support/probe.js';

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
  let vm2 = '';
  let probe = '';
  /** the virtual-router L3's VM, its EIP and VIP, and its router (made by the EIP test) */
  const vr = { vm: '', eip: '', vip: '', l3: '' };

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
    // host 1 through the API, host 2 through the CLI with the line the installer prints
    const job1 = await addHost(t, cloud, h1, lab.secret);
    assert.equal(job1.state, 'Succeeded', JSON.stringify(job1.error));
    const cli = cliRunner();
    const login = await cli.run([
      'login',
      '--url',
      t.url,
      '--account',
      'admin',
      '--password',
      ADMIN_PASSWORD,
    ]);
    assert.equal(login.code, 0, login.stderr);
    const created = await cli.run([
      'host',
      'create',
      '--name',
      `kvm-${h2.prefix}`,
      '--cluster',
      `kvm-cluster-${lab.tag}`,
      '--management-ip',
      h2.ip,
      '--agent-secret',
      lab.secret,
      '--wait',
    ]);
    assert.equal(created.code, 0, `${created.stdout}${created.stderr}`);
    const listed = (await t.admin.get(`/v1/hosts?q=managementIp=${h2.ip}`)).body.items[0];
    cloud.hosts.set(h2, listed.uuid);
    const shown = await cli.run(['host', 'get', listed.uuid, '-o', 'json']);
    assert.equal(JSON.parse(shown.stdout).accelerator, 'tcg');
    assert.ok(!shown.stdout.includes(lab.secret));
    for (const h of [h1, h2]) {
      const uuid = cloud.hosts.get(h)!;
      const job = (await t.admin.get(`/v1/jobs?q=resourceUuid=${uuid}`)).body.items[0];
      const host = (await t.admin.get(`/v1/hosts/${uuid}`)).body;
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

  test('a second VM on the other host; the first answers across the VXLAN', async () => {
    const job = await ok(t.admin, 'POST', '/v1/vms', {
      name: `vm2-${lab.tag}`,
      imageUuid: cloud.image,
      instanceOfferingUuid: cloud.offering,
      l3NetworkUuids: [net.l3],
      hostUuid: cloud.hosts.get(h2),
    });
    vm2 = job.resourceUuid;
    const nic2 = await nicOf(t.admin, vm2);
    const lease = await waitSerial(h2, vm2, /NIMBUS-DHCP-OK ip=(\S+)/);
    assert.equal(lease[1], nic2.ip);
    // a probe on host 2's bridge of the L2 (no route of its own: only the VXLAN leads to host 1)
    probe = attachProbe(lab, h2, `br_vx_${VNI}`, `${net.subnet}.200/24`);
    const ip1 = (await nicOf(t.admin, vm1)).ip;
    await waitFor('ping of vm1 from host 2', () => (pingOk(probe, ip1) ? true : undefined), 60_000);
    assert.match(
      await waitFor('http of vm1', () => curl(probe, ip1) ?? undefined, 30_000),
      /nimbus|NIMBUS|vm1/i,
    );
    assert.ok(pingOk(probe, nic2.ip), 'vm2 answers on its own host too');
  });

  test('a security group first drops, then allows, TCP port 80 of vm1', async () => {
    const ip1 = (await nicOf(t.admin, vm1)).ip;
    const sg = (await ok(t.admin, 'POST', '/v1/security-groups', { name: `sg-${lab.tag}` })).resourceUuid;
    await ok(t.admin, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: sg,
      direction: 'ingress',
      protocol: 'icmp',
    });
    await ok(t.admin, 'POST', `/v1/security-groups/${sg}/actions/add-nics`, {
      vmNicUuids: [(await nicOf(t.admin, vm1)).uuid],
    });
    assert.ok(pingOk(probe, ip1), 'icmp is allowed');
    assert.equal(curl(probe, ip1), undefined, 'tcp 80 is dropped: no rule allows it');
    await ok(t.admin, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: sg,
      direction: 'ingress',
      protocol: 'tcp',
      portStart: 80,
    });
    assert.ok(await waitFor('http of vm1 once allowed', () => curl(probe, ip1) ?? undefined, 20_000));
  });

  test('vm1 live-migrates to host 2 and keeps answering', async () => {
    const ip1 = (await nicOf(t.admin, vm1)).ip;
    const before = h1.qemuPid(vm1);
    assert.ok(before);
    const pinging = pingFor(probe, ip1, 120);
    await ok(t.admin, 'POST', `/v1/vms/${vm1}/actions/migrate`, { hostUuid: cloud.hosts.get(h2) });
    const vm = await vmOf(t.admin, vm1);
    assert.equal(vm.hostUuid, cloud.hosts.get(h2));
    assert.equal(vm.state, 'Running');
    assert.ok(h2.qemuPid(vm1), 'its QEMU runs on host 2');
    assert.equal(h1.qemuPid(vm1), undefined, 'and no longer on host 1');
    assert.ok(
      await waitFor('http of vm1 on host 2', () => curl(probe, ip1) ?? undefined, 30_000),
      'the SG rule moved with it',
    );
    const pings = await pinging.stop();
    assert.ok(
      pings.received > 0 && pings.received >= pings.sent - 10,
      `pings during the migration: ${JSON.stringify(pings)}`,
    );
  });

  test('a volume attached live: the guest sees a new disk', async () => {
    const from = h2.serial(vm1).length;
    await ok(t.admin, 'POST', '/v1/volumes', {
      name: `data-${lab.tag}`,
      size: 64 * MiB,
      primaryStorageUuid: cloud.ps,
      vmUuid: vm1,
      deleteWithVm: true,
    });
    await waitSerial(h2, vm1, /NIMBUS-DISKS[^\n]*vdb:131072/, from, 60_000);
  });

  test('SIGKILL of the agent: host Disconnected and VMs Unknown, guests untouched; restarted, Connected and Running again', async () => {
    const pids = [h2.qemuPid(vm1), h2.qemuPid(vm2)];
    assert.ok(pids.every(Boolean));
    await h2.killAgent();
    const ip1 = (await nicOf(t.admin, vm1)).ip;
    assert.ok(curl(probe, ip1), 'the guest answers while its agent is gone');
    // the silent agent is HOST_UNREACHABLE like a powered-off simulated host: the reconciler
    // marks the host Disconnected and its VMs Unknown (3 failed passes, 2 s apart here)
    await waitFor(
      'host 2 Disconnected',
      async () => {
        const h = (await t.admin.get(`/v1/hosts/${cloud.hosts.get(h2)}`)).body;
        return h.status === 'Disconnected' ? h : undefined;
      },
      60_000,
    );
    for (const uuid of [vm1, vm2]) assert.equal((await vmOf(t.admin, uuid)).state, 'Unknown');
    assert.deepEqual([h2.qemuPid(vm1), h2.qemuPid(vm2)], pids, 'nobody touched the guests');
    await h2.startAgent();
    assert.deepEqual([h2.qemuPid(vm1), h2.qemuPid(vm2)], pids, 'the same QEMU processes');
    const host = await waitFor('host 2 Connected', async () => {
      const h = (await t.admin.get(`/v1/hosts/${cloud.hosts.get(h2)}`)).body;
      return h.status === 'Connected' ? h : undefined;
    });
    assert.equal(host.status, 'Connected');
    for (const uuid of [vm1, vm2]) await waitVmState(t.admin, uuid, 'Running', 30_000);
    assert.ok(curl(probe, ip1));
  });

  test("a guest's QEMU killed behind Nimbus's back: the reconciler marks its VM Stopped", async () => {
    const pid = h2.qemuPid(vm2);
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    const vm = await waitVmState(t.admin, vm2, 'Stopped', 60_000);
    assert.equal(vm.hostUuid, null);
  });

  test('stop, start, destroy and expunge leave no QEMU, TAP, namespace, nft rule or file behind', async () => {
    await ok(t.admin, 'POST', `/v1/vms/${vm1}/actions/stop`, {});
    assert.equal(h2.qemuPid(vm1), undefined, 'stopped: no QEMU');
    await ok(t.admin, 'POST', `/v1/vms/${vm1}/actions/start`, {});
    const again = await vmOf(t.admin, vm1);
    const host = again.hostUuid === cloud.hosts.get(h1) ? h1 : h2;
    await waitSerial(host, vm1, /NIMBUS-DHCP-OK ip=/, 0, 240_000);
    const nics = [await nicOf(t.admin, vm1), await nicOf(t.admin, vm2)];
    const volumes = (await t.admin.get(`/v1/volumes?q=vmUuid=${vm1}`)).body.items.concat(
      (await t.admin.get(`/v1/volumes?q=vmUuid=${vm2}`)).body.items,
    );
    detachProbe(lab, h2, probe);
    for (const uuid of [vm1, vm2]) {
      await ok(t.admin, 'DELETE', `/v1/vms/${uuid}`);
      await ok(t.admin, 'POST', `/v1/vms/${uuid}/actions/expunge`, {});
    }
    // what is left on the hosts, listed
    const left = leftovers(
      lab,
      [vm1, vm2],
      nics,
      volumes.map((v: { uuid: string }) => v.uuid),
    );
    assert.deepEqual(
      left,
      { qemu: [], taps: [], namespaces: [], dnsmasq: [], nftRules: [], files: [] },
      JSON.stringify(left),
    );
  });

  test('an EIP on a virtual-router L3 reaches a VM from the public network', async () => {
    const api = t.admin;
    const publicL2 = (
      await ok(api, 'POST', '/v1/l2-networks', {
        name: `pub-${lab.tag}`,
        zoneUuid: cloud.zone,
        type: 'no-vlan',
        physicalInterface: 'pub0',
      })
    ).resourceUuid;
    await ok(api, 'POST', `/v1/l2-networks/${publicL2}/actions/attach-cluster`, {
      clusterUuid: cloud.cluster,
    });
    const pub = `100.65.${lab.n}`;
    const publicL3 = (
      await ok(api, 'POST', '/v1/l3-networks', {
        name: `public-${lab.tag}`,
        l2NetworkUuid: publicL2,
        category: 'public',
        shared: true,
      })
    ).resourceUuid;
    await ok(api, 'POST', '/v1/ip-ranges', {
      name: `public-range-${lab.tag}`,
      l3NetworkUuid: publicL3,
      startIp: `${pub}.10`,
      endIp: `${pub}.100`,
      prefixLength: 24,
      gateway: `${pub}.250`,
    });
    const managementL3 = (
      await ok(api, 'POST', '/v1/l3-networks', {
        name: `mgmt-${lab.tag}`,
        l2NetworkUuid: publicL2,
        category: 'system',
      })
    ).resourceUuid;
    await ok(api, 'POST', '/v1/ip-ranges', {
      name: `mgmt-range-${lab.tag}`,
      l3NetworkUuid: managementL3,
      startIp: `${pub}.110`,
      endIp: `${pub}.200`,
      prefixLength: 24,
    });
    await ok(api, 'POST', '/v1/virtual-router-offerings', {
      name: `vr-${lab.tag}`,
      zoneUuid: cloud.zone,
      cpu: 1,
      memory: 256 * MiB,
      imageUuid: cloud.image,
      managementL3NetworkUuid: managementL3,
      publicL3NetworkUuid: publicL3,
      isDefault: true,
    });
    const vrL2 = (
      await ok(api, 'POST', '/v1/l2-networks', {
        name: `vx-vr-${lab.tag}`,
        zoneUuid: cloud.zone,
        type: 'vxlan',
        vxlanPoolUuid: net.pool,
        vni: VNI + 1,
      })
    ).resourceUuid;
    await ok(api, 'POST', `/v1/l2-networks/${vrL2}/actions/attach-cluster`, { clusterUuid: cloud.cluster });
    const vrL3 = (
      await ok(api, 'POST', '/v1/l3-networks', {
        name: `vr-net-${lab.tag}`,
        l2NetworkUuid: vrL2,
        category: 'private',
        provider: 'virtual-router',
        mtu: 1400,
      })
    ).resourceUuid;
    await ok(api, 'POST', '/v1/ip-ranges', {
      name: `vr-range-${lab.tag}`,
      l3NetworkUuid: vrL3,
      cidr: '192.168.77.0/24',
    });
    const job = await ok(api, 'POST', '/v1/vms', {
      name: `vm3-${lab.tag}`,
      imageUuid: cloud.image,
      instanceOfferingUuid: cloud.offering,
      l3NetworkUuids: [vrL3],
    });
    const vm3 = job.resourceUuid as string;
    vr.vm = vm3;
    vr.l3 = vrL3;
    const vm = await vmOf(api, vm3);
    const host = vm.hostUuid === cloud.hosts.get(h1) ? h1 : h2;
    const nic = await nicOf(api, vm3);
    const lease = await waitSerial(host, vm3, /NIMBUS-DHCP-OK ip=(\S+)/);
    assert.equal(lease[1], nic.ip, "the router's dnsmasq gives the allocated address");
    const vip = await ok(api, 'POST', '/v1/vips', { name: `vip-${lab.tag}`, l3NetworkUuid: publicL3 });
    const vipIp = (await api.get(`/v1/vips/${vip.resourceUuid}`)).body.ip as string;
    vr.vip = vip.resourceUuid;
    vr.eip = (
      await ok(api, 'POST', '/v1/eips', {
        name: `eip-${lab.tag}`,
        vipUuid: vip.resourceUuid,
        vmNicUuid: nic.uuid,
      })
    ).resourceUuid;
    const page = await waitFor(
      'http of vm3 through its EIP',
      () => curl(lab.publicNs, vipIp) ?? undefined,
      60_000,
    );
    assert.ok(page.length > 0);
    // the router's appliance VM runs as the router's namespace on its host, not as a QEMU guest
    const router = (await api.get(`/v1/virtual-routers?q=l3NetworkUuid=${vrL3}`)).body.items[0];
    const appliance = await vmOf(api, router.vmUuid);
    assert.equal(appliance.state, 'Running');
    for (const h of lab.hosts) {
      assert.equal(h.qemuPid(router.vmUuid), undefined, `no QEMU for the appliance on ${h.prefix}`);
      assert.equal(existsSync(h.vmDir(router.vmUuid)), false, 'and no QEMU definition');
    }
    const vrHost = lab.hosts.find((h) => cloud.hosts.get(h) === appliance.hostUuid)!;
    assert.ok(
      lab.ourNamespaces().some((n) => n.startsWith(`${vrHost.prefix}r-`)),
      "the router's namespace is on the appliance's host",
    );
  });

  test('deleting the VM and its virtual router leaves no QEMU, namespace, dnsmasq, TAP, nft rule or file', async () => {
    const api = t.admin;
    const router = (await api.get(`/v1/virtual-routers?q=l3NetworkUuid=${vr.l3}`)).body.items[0];
    assert.ok(router?.vmUuid, 'the EIP test made a router');
    const vms = [vr.vm, router.vmUuid as string];
    const nics: Array<{ uuid: string; ip: string; mac: string }> = [];
    const volumes: string[] = [];
    for (const uuid of vms) {
      nics.push(...(await api.get(`/v1/vm-nics?q=vmUuid=${uuid}`)).body.items);
      volumes.push(
        ...(await api.get(`/v1/volumes?q=vmUuid=${uuid}`)).body.items.map((v: { uuid: string }) => v.uuid),
      );
    }
    // the listing sees the router while it is there (so its empty answer below means gone)
    const before = leftovers(lab, [], [], []);
    assert.ok(
      before.namespaces.some((n) => /r-/.test(n)),
      JSON.stringify(before.namespaces),
    );
    assert.ok(
      before.dnsmasq.some((d) => d.includes('/router/')),
      JSON.stringify(before.dnsmasq),
    );
    await ok(api, 'DELETE', `/v1/eips/${vr.eip}`);
    await ok(api, 'DELETE', `/v1/vips/${vr.vip}`);
    await ok(api, 'DELETE', `/v1/vms/${vr.vm}`);
    await ok(api, 'POST', `/v1/vms/${vr.vm}/actions/expunge`, {});
    await ok(api, 'DELETE', `/v1/virtual-routers/${router.uuid}`);
    assert.equal((await api.get(`/v1/vms/${router.vmUuid}`)).status, 404, 'the appliance VM is expunged');
    const left = leftovers(lab, vms, nics, volumes);
    assert.deepEqual(
      left,
      { qemu: [], taps: [], namespaces: [], dnsmasq: [], nftRules: [], files: [] },
      JSON.stringify(left),
    );
  });
});
