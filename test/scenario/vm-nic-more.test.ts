/**
 * More of the VM NICs' behaviour: security groups given at create (every NIC joins them; the
 * host's firewall state lists the NIC), the reconciler's repairs moving NICs on and off hosts,
 * attaching an L3 whose L2 the VM's cluster lacks, and a router's appliance VM (created through
 * VmService.createAppliance: the admin's, no quota, marked as the router's appliance, its guest
 * NIC on the gateway).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import type { VmService } from '../../src/resources/compute/vm/service.js';
import { allocateNicIp, insertNics, removeNics } from '../../src/resources/compute/vm-nic/nics.js';
import { assertInvariants } from '../support/invariants.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import {
  addL2,
  addL3,
  addressOfHost,
  buildNetEnv,
  dhcpNicsOn,
  type NetEnv,
  nicsOf,
} from './network-fixtures.js';
import { createVm, GiB, next, ok, vmOf } from './vm-env.js';

let t: TestNode;
let env: NetEnv;
let vms: VmService;
let tenant: Api;

before(async () => {
  t = await startTestNode();
  env = await buildNetEnv(t, { prefix: 'nicm', hosts: 2, hostMemory: 64 * GiB });
  vms = t.node.kindServices.find((s) => s.contract.kind === 'vms') as VmService;
  await t.admin.job('POST', '/v1/accounts', { name: 'nicm-tenant', password: 'tenant-password' });
  tenant = await t.anon.login('nicm-tenant', 'tenant-password');
});
after(() => t.stop());

describe('security groups given at create', () => {
  test('every NIC joins the groups; the NIC shows them; the host’s firewall state carries it', async () => {
    const group = (await ok(t, 'POST', '/v1/security-groups', { name: `nicm-web-${next()}` })).resourceUuid;
    await ok(t, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: group,
      direction: 'ingress',
      protocol: 'tcp',
      portStart: 80,
      remoteCidr: '0.0.0.0/0',
    });
    const second = await addL3(t, env.l2, { name: `nicm-second-${next()}` });
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3, second.l3], securityGroupUuids: [group] });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const nics = await nicsOf(t, job.resourceUuid);
    const members = await t.db.db
      .selectFrom('vmNicSecurityGroups')
      .select('vmNicUuid')
      .where('securityGroupUuid', '=', group)
      .execute();
    assert.deepEqual(members.map((m) => m.vmNicUuid).sort(), nics.map((n) => n.uuid).sort());
    const shown = await t.admin.get(`/v1/vm-nics/${nics[0]!.uuid}`);
    assert.deepEqual(shown.body.securityGroupUuids, [group]);
    const host = (await vmOf(t, job.resourceUuid))!.hostUuid!;
    const sg = t.node.services.deps.simulator.networks.host(await addressOfHost(t, host)).sg?.state ?? [];
    const mine = sg.find((n) => n.nicUuid === nics[0]!.uuid);
    assert.deepEqual(mine?.securityGroupUuids, [group]);
    assert.ok(mine?.rules.some((r) => r.protocol === 'tcp' && r.portStart === 80));
  });

  test('the other members’ hosts learn a member’s address when it joins, changes it, and leaves', async () => {
    const group = (await ok(t, 'POST', '/v1/security-groups', { name: `nicm-peers-${next()}` })).resourceUuid;
    const rule = (
      await ok(t, 'POST', '/v1/security-group-rules', {
        securityGroupUuid: group,
        direction: 'ingress',
        protocol: 'all',
        remoteSecurityGroupUuid: group,
      })
    ).resourceUuid;
    const member = async (host: string, extra: Record<string, unknown> = {}) => {
      const job = await createVm(t, env, {
        l3NetworkUuids: [env.l3],
        securityGroupUuids: [group],
        hostUuid: host,
        ...extra,
      });
      assert.equal(job.state, 'Succeeded', JSON.stringify(job));
      return { vm: job.resourceUuid as string, nic: (await nicsOf(t, job.resourceUuid))[0]! };
    };
    const a = await member(env.hosts[0]!);
    /** the addresses host 0's firewall lets in for `a` through the group rule */
    const seenBy0 = async () => {
      const state = t.node.services.deps.simulator.networks.host(await addressOfHost(t, env.hosts[0]!));
      const entry = state.sg?.state.find((n) => n.nicUuid === a.nic.uuid);
      return (entry?.rules.find((r) => r.ruleUuid === rule)?.remoteCidrs ?? []).slice().sort();
    };
    // a member made Stopped on the other host: host 0 learns its address all the same
    const b = await member(env.hosts[1]!, { strategy: 'create-stopped' });
    assert.deepEqual(await seenBy0(), [`${a.nic.ip}/32`, `${b.nic.ip}/32`].sort());
    await ok(t, 'POST', `/v1/vm-nics/${b.nic.uuid}/actions/change-ip`, {});
    const moved = (await nicsOf(t, b.vm))[0]!.ip;
    assert.deepEqual(await seenBy0(), [`${a.nic.ip}/32`, `${moved}/32`].sort());
    await ok(t, 'DELETE', `/v1/vms/${b.vm}`);
    await ok(t, 'POST', `/v1/vms/${b.vm}/actions/expunge`, {});
    assert.deepEqual(await seenBy0(), [`${a.nic.ip}/32`]);
  });

  test('another account’s group is refused at admission', async () => {
    const theirs = (await ok(t, 'POST', '/v1/security-groups', { name: `nicm-admin-${next()}` }))
      .resourceUuid;
    const res = await tenant.post('/v1/vms', {
      name: `nicm-${next()}`,
      imageUuid: env.image,
      instanceOfferingUuid: env.small,
      l3NetworkUuids: [env.l3],
      securityGroupUuids: [theirs],
    });
    assert.equal(res.status, 400);
    assert.deepEqual(
      res.body.error.details.fields.map((f: any) => f.field),
      ['securityGroupUuids[0]'],
    );
  });
});

describe('the reconciler moves NICs with its repairs', () => {
  test('a VM found stopped leaves its host’s DHCP; found running again, it is back', async () => {
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3] });
    const uuid = job.resourceUuid as string;
    const [nic] = await nicsOf(t, uuid);
    const host = (await vmOf(t, uuid))!.hostUuid!;
    assert.equal((await t.admin.post(`/v1/simulator/vms/${uuid}/state`, { state: 'Stopped' })).status, 200);
    await vms.reconciler.reconcileAll();
    assert.equal((await vmOf(t, uuid))?.state, 'Stopped');
    assert.equal((await nicsOf(t, uuid))[0]?.hostUuid, null);
    assert.ok(!(await dhcpNicsOn(t, host)).includes(nic!.uuid));
    assert.equal((await t.admin.post(`/v1/simulator/vms/${uuid}/state`, { state: 'Running' })).status, 200);
    await vms.reconciler.reconcileAll();
    assert.equal((await vmOf(t, uuid))?.state, 'Running');
    assert.equal((await nicsOf(t, uuid))[0]?.hostUuid, host);
    assert.ok((await dhcpNicsOn(t, host)).includes(nic!.uuid));
    await assertInvariants(t.db.db);
  });
});

describe('MACs', () => {
  test('a MAC already taken on the L2 is drawn again for that NIC only; every draw taken fails clearly', async () => {
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3] });
    const [taken] = await nicsOf(t, job.resourceUuid);
    const other = await createVm(t, env, { strategy: 'create-stopped' });
    const vm = { uuid: other.resourceUuid as string, accountUuid: taken!.accountUuid };
    const make = (deviceId: number) => ({
      uuid: newId(),
      l3NetworkUuid: env.l3,
      l2NetworkUuid: env.l2,
      deviceId,
      isDefault: deviceId === 0,
      ip: null,
      allowGateway: false,
      bridgeName: 'br_eth0',
      mtu: 1500,
    });
    const nics = [make(0), make(1)];
    const withAddresses = await Promise.all(
      nics.map(async (n) => ({ ...n, address: await allocateNicIp(t.db.db, vm, n) })),
    );
    // the first draw of the first NIC collides; the others are fresh
    const draws = [taken!.mac, 'fa:16:3e:00:00:01', 'fa:16:3e:00:00:02'];
    const specs = await insertNics(t.db.db, vm, withAddresses, null, () => draws.shift()!);
    assert.deepEqual(
      specs.map((s) => [s.deviceId, s.mac]),
      [
        [0, 'fa:16:3e:00:00:02'],
        [1, 'fa:16:3e:00:00:01'],
      ],
    );
    const extra = { ...make(2), address: await allocateNicIp(t.db.db, vm, make(2)) };
    await assert.rejects(
      insertNics(t.db.db, vm, [extra], null, () => taken!.mac),
      (err: { code?: string }) => err.code === 'VM_NIC_MAC_EXHAUSTED',
    );
    await removeNics(t.db.db, { vmUuid: vm.uuid });
    assert.deepEqual(await nicsOf(t, vm.uuid), []);
    await assertInvariants(t.db.db);
  });
});

describe('a start is placed where the VM’s networks are', () => {
  test('shared storage reaching two clusters: a stopped VM starts only on the cluster with its L2', async () => {
    const nfs = await buildNetEnv(t, { prefix: 'nicm-nfs', hosts: 1, storage: 'nfs', hostMemory: 64 * GiB });
    const other = (
      await ok(t, 'POST', '/v1/clusters', {
        name: `nicm-other-${next()}`,
        zoneUuid: nfs.zone,
        hypervisorType: 'simulator',
      })
    ).resourceUuid;
    await ok(t, 'POST', '/v1/hosts', {
      name: `nicm-other-host-${next()}`,
      clusterUuid: other,
      managementIp: '10.99.0.1',
      simulatorCpu: 64,
      simulatorMemory: 256 * GiB,
    });
    await ok(t, 'POST', `/v1/primary-storages/${nfs.ps}/actions/attach-cluster`, { clusterUuid: other });
    const job = await createVm(t, nfs, { l3NetworkUuids: [nfs.l3], clusterUuid: nfs.cluster });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    await ok(t, 'POST', `/v1/vms/${job.resourceUuid}/actions/stop`, {});
    // the only host with the L2 is out of service: the roomy host of the other cluster must not take it
    await ok(t, 'POST', `/v1/hosts/${nfs.hosts[0]}/actions/disable`, {});
    const start = await t.admin.job('POST', `/v1/vms/${job.resourceUuid}/actions/start`, {});
    assert.equal(start.state, 'Failed');
    assert.equal(start.error.code, 'NO_HOST_AVAILABLE');
    assert.match(start.error.message, /L2/);
    await ok(t, 'POST', `/v1/hosts/${nfs.hosts[0]}/actions/enable`, {});
    await ok(t, 'POST', `/v1/vms/${job.resourceUuid}/actions/start`, {});
    assert.equal((await vmOf(t, job.resourceUuid))?.hostUuid, nfs.hosts[0]);
  });
});

describe('attach needs the L2 on the VM’s cluster', () => {
  test('an L3 whose L2 is not attached to the VM’s cluster is refused, naming both', async () => {
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3] });
    const elsewhere = await addL2(t, env, 'eth5', []);
    const l3 = await addL3(t, elsewhere, { name: `nicm-elsewhere-${next()}` });
    const res = await t.admin.post('/v1/vm-nics', { vmUuid: job.resourceUuid, l3NetworkUuid: l3.l3 });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'L2_NETWORK_NOT_IN_CLUSTER');
    assert.match(res.body.error.message, new RegExp(env.cluster));
    assert.equal((await vmOf(t, job.resourceUuid))?.task, null, 'the VM is not held');
  });
});

describe('appliance VMs', () => {
  test('createAppliance: the admin’s VM, no quota, marked as the router’s, guest NIC on the gateway', async () => {
    await ok(t, 'POST', '/v1/virtual-router-offerings', {
      name: `nicm-vr-${next()}`,
      zoneUuid: env.zone,
      cpu: 1,
      memory: GiB,
      imageUuid: env.image,
      managementL3NetworkUuid: env.l3,
      publicL3NetworkUuid: env.l3,
      isDefault: true,
    });
    const guest = await addL3(t, env.l2, { name: `nicm-guest-${next()}`, provider: 'virtual-router' });
    const routerUuid = '0190a0b0-0000-7000-8000-00000000abcd';
    const made = await vms.createAppliance({
      routerUuid,
      name: `vr-${next()}`,
      imageUuid: env.image,
      cpu: 1,
      memory: GiB,
      zoneUuid: env.zone,
      nics: [
        { l3NetworkUuid: env.l3 },
        { l3NetworkUuid: guest.l3, ip: `${guest.subnet}.1`, allowGateway: true },
      ],
    });
    const job = await t.admin.get(`/v1/jobs/${made.jobUuid}?wait=true`);
    assert.equal(job.body.state, 'Succeeded', JSON.stringify(job.body));
    const vm = await vmOf(t, made.vmUuid);
    const admin = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('type', '=', 'admin')
      .executeTakeFirstOrThrow();
    assert.equal(vm?.accountUuid, admin.uuid);
    assert.equal((vm?.placement as { applianceOf?: string } | undefined)?.applianceOf, routerUuid);
    const nics = await nicsOf(t, made.vmUuid);
    assert.deepEqual(
      nics.map((n) => [n.l3NetworkUuid, n.isDefault, n.ip?.startsWith(`${guest.subnet}.`) ? n.ip : 'public']),
      [
        [env.l3, true, 'public'],
        [guest.l3, false, `${guest.subnet}.1`],
      ],
    );
    // its own chain made no router for the guest L3
    const routers = await t.db.db
      .selectFrom('virtualRouters')
      .select('uuid')
      .where('l3NetworkUuid', '=', guest.l3)
      .execute();
    assert.deepEqual(routers, []);
  });
});
