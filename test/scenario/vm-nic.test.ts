/**
 * VM NICs made with the VM (docs/network.md "VM NICs"), through the API on simulated hosts:
 * NICs in device order with addresses from their L3s' ranges, unique MACs, one default NIC;
 * static addresses; failures (address taken, L3 exhausted) roll the whole create back; every bad
 * networking field is refused at admission at once; placement needs the L2s; and the NICs'
 * host (the host whose DHCP serves them) follows the VM through stop, start, migrate, destroy;
 * expunge releases the addresses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertInvariants } from '../support/invariants.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import {
  addL2,
  addL3,
  addressesOf,
  bridgesOn,
  buildNetEnv,
  dhcpNicsOn,
  type NetEnv,
  nicsOf,
} from './network-fixtures.js';
import { buildVmEnv, createVm, footprint, GiB, next, ok, vmOf } from './vm-env.js';

let t: TestNode;
let env: NetEnv;
let tenant: Api;

before(async () => {
  t = await startTestNode();
  env = await buildNetEnv(t, { prefix: 'nic', hosts: 2, storage: 'nfs', hostMemory: 64 * GiB });
  await t.admin.job('POST', '/v1/accounts', { name: 'nic-tenant', password: 'tenant-password' });
  tenant = await t.anon.login('nic-tenant', 'tenant-password');
});
after(() => t.stop());

const inRange = (ip: string | null, subnet: string, first = 10, last = 250) => {
  assert.ok(ip, 'an address');
  const [a, b, c, d] = ip.split('.');
  assert.equal(`${a}.${b}.${c}`, subnet, `${ip} in ${subnet}.0/24`);
  assert.ok(Number(d) >= first && Number(d) <= last, `${ip} within .${first}-.${last}`);
};

/** Everything a rolled-back create must leave as it was. */
async function leftovers() {
  const [nics, addresses, vms] = await Promise.all([
    t.db.db.selectFrom('vmNics').select('uuid').orderBy('uuid').execute(),
    t.db.db.selectFrom('ipAddresses').select(['uuid', 'ip']).orderBy('uuid').execute(),
    t.db.db.selectFrom('vms').select('uuid').orderBy('uuid').execute(),
  ]);
  return { nics, addresses, vms, ...(await footprint(t)) };
}

describe('NICs made with the VM', () => {
  test('two L3s: two NICs in order, addresses in range, unique MACs, the first is default, served by the host', async () => {
    const second = await addL3(t, env.l2, { name: `nic-second-${next()}` });
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3, second.l3] });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const vm = await vmOf(t, job.resourceUuid);
    const nics = await nicsOf(t, job.resourceUuid);
    assert.deepEqual(
      nics.map((n) => [n.deviceId, n.l3NetworkUuid, n.isDefault, n.hostUuid]),
      [
        [0, env.l3, true, vm?.hostUuid],
        [1, second.l3, false, vm?.hostUuid],
      ],
    );
    inRange(nics[0]!.ip, env.subnet);
    inRange(nics[1]!.ip, second.subnet);
    for (const n of nics) assert.match(n.mac, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
    assert.notEqual(nics[0]!.mac, nics[1]!.mac);
    // each NIC holds exactly its address row
    const addresses = await addressesOf(t, job.resourceUuid);
    assert.deepEqual(
      addresses.map((a) => [a.ownerUuid, a.ip, a.usedFor]).sort(),
      nics.map((n) => [n.uuid, n.ip, 'vm-nic']).sort(),
    );
    // the host's flat DHCP answers for both; its bridge exists
    const dhcp = await dhcpNicsOn(t, vm!.hostUuid!);
    for (const n of nics) assert.ok(dhcp.includes(n.uuid), 'DHCP entry on the VM’s host');
    assert.ok((await bridgesOn(t, vm!.hostUuid!)).includes('br_eth0'));
    // the API shows them, with their security groups
    const listed = await t.admin.get(`/v1/vm-nics?q=vmUuid=${job.resourceUuid}&sort=deviceId`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.map((n: any) => [n.ip, n.securityGroupUuids]),
      nics.map((n) => [n.ip, []]),
    );
    const one = await t.admin.get(`/v1/vm-nics/${nics[0]!.uuid}`);
    assert.equal(one.body.mac, nics[0]!.mac);
    assert.deepEqual(one.body.securityGroupUuids, []);
  });

  test('defaultL3NetworkUuid chooses the default NIC; a static address is given as asked', async () => {
    const second = await addL3(t, env.l2, { name: `nic-default-${next()}` });
    const ip = `${second.subnet}.77`;
    const job = await createVm(t, env, {
      l3NetworkUuids: [env.l3, second.l3],
      defaultL3NetworkUuid: second.l3,
      staticIps: [{ l3NetworkUuid: second.l3, ip }],
    });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const nics = await nicsOf(t, job.resourceUuid);
    assert.deepEqual(
      nics.map((n) => [n.l3NetworkUuid, n.isDefault]),
      [
        [env.l3, false],
        [second.l3, true],
      ],
    );
    assert.equal(nics[1]!.ip, ip);
  });

  test('a static address already taken fails the job and rolls everything back', async () => {
    const holder = await createVm(t, env, { l3NetworkUuids: [env.l3] });
    const [nic] = await nicsOf(t, holder.resourceUuid);
    const before = await leftovers();
    const job = await createVm(t, env, {
      l3NetworkUuids: [env.l3],
      staticIps: [{ l3NetworkUuid: env.l3, ip: nic!.ip }],
    });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'IP_ADDRESS_TAKEN');
    assert.deepEqual(job.steps.done, []);
    assert.deepEqual(await leftovers(), before, 'no VM, NIC, address or capacity left');
  });

  test('a static address outside the ranges fails the job with IP_ADDRESS_NOT_IN_RANGE', async () => {
    const job = await createVm(t, env, {
      l3NetworkUuids: [env.l3],
      staticIps: [{ l3NetworkUuid: env.l3, ip: `${env.subnet}.251` }],
    });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'IP_ADDRESS_NOT_IN_RANGE');
  });

  test('an exhausted L3 fails the create and rolls it back; the other NIC’s address is released too', async () => {
    const tiny = await addL3(t, env.l2, { name: `nic-tiny-${next()}`, first: 10, last: 11 });
    for (let i = 0; i < 2; i++) await ok(t, 'POST', '/v1/vms', vmBody({ l3NetworkUuids: [tiny.l3] }));
    const before = await leftovers();
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3, tiny.l3] });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'L3_NETWORK_IP_EXHAUSTED');
    assert.deepEqual(await leftovers(), before);
  });

  test('every bad networking field is reported at once, and nothing is made', async () => {
    const l2 = await addL2(t, env, 'eth7');
    const empty = (
      await ok(t, 'POST', '/v1/l3-networks', {
        name: `nic-empty-${next()}`,
        l2NetworkUuid: l2,
        category: 'private',
      })
    ).resourceUuid;
    const disabled = await addL3(t, l2, { name: `nic-disabled-${next()}` });
    await ok(t, 'POST', `/v1/l3-networks/${disabled.l3}/actions/disable`, {});
    const unknown = '0190a0b0-0000-7000-8000-0000000000aa';
    const before = await leftovers();
    const res = await t.admin.post('/v1/vms', {
      ...vmBody({}),
      l3NetworkUuids: [env.l3, env.l3, unknown, empty, disabled.l3],
      defaultL3NetworkUuid: unknown.replace('aa', 'ab'),
      staticIps: [
        { l3NetworkUuid: env.l3, ip: 'not-an-ip' },
        { l3NetworkUuid: unknown.replace('aa', 'ac'), ip: '10.0.0.1' },
      ],
      securityGroupUuids: [unknown.replace('aa', 'ad')],
    });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    const fields = res.body.error.details.fields.map((f: any) => f.field).sort();
    assert.deepEqual(fields, [
      'defaultL3NetworkUuid',
      'l3NetworkUuids[1]',
      'l3NetworkUuids[2]',
      'l3NetworkUuids[3]',
      'l3NetworkUuids[4]',
      'securityGroupUuids[0]',
      'staticIps[0].ip',
      'staticIps[1].l3NetworkUuid',
    ]);
    const problem = (f: string) => res.body.error.details.fields.find((p: any) => p.field === f).problem;
    assert.match(problem('l3NetworkUuids[1]'), /listed twice/);
    assert.match(problem('l3NetworkUuids[2]'), /no l3 network/);
    assert.match(problem('l3NetworkUuids[3]'), /no IP range/);
    assert.match(problem('l3NetworkUuids[4]'), /Disabled/);
    assert.deepEqual(await leftovers(), before);
  });

  test('another account’s L3 is refused like one that does not exist; a shared one is usable', async () => {
    const theirs = await addL3(t, env.l2, { name: `nic-admin-private-${next()}` });
    const res = await tenant.post('/v1/vms', { ...vmBody({}), l3NetworkUuids: [theirs.l3] });
    assert.equal(res.status, 400);
    assert.match(res.body.error.details.fields[0].problem, /no l3 network/);
    const shared = await tenant.job('POST', '/v1/vms', { ...vmBody({}), l3NetworkUuids: [env.l3] });
    assert.equal(shared.state, 'Succeeded', JSON.stringify(shared));
    const [nic] = await nicsOf(t, shared.resourceUuid);
    const tenantRow = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('name', '=', 'nic-tenant')
      .executeTakeFirstOrThrow();
    assert.equal(nic?.accountUuid, tenantRow.uuid, 'the NIC is the VM owner’s');
  });

  test('a VM is placed only where its L2s are: a cluster without them is refused with the reason', async () => {
    const other = await buildVmEnv(t, { prefix: 'nic-nol2', hosts: 1 });
    const job = await createVm(t, other, { l3NetworkUuids: [env.l3], clusterUuid: other.cluster });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'NO_HOST_AVAILABLE');
    assert.match(job.error.message, /L2/i);
  });

  test('create-stopped: NICs and addresses exist, on no host; start puts them on its host', async () => {
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3], strategy: 'create-stopped' });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const [nic] = await nicsOf(t, job.resourceUuid);
    assert.equal(nic?.hostUuid, null);
    inRange(nic!.ip, env.subnet);
    await ok(t, 'POST', `/v1/vms/${job.resourceUuid}/actions/start`, {});
    const vm = await vmOf(t, job.resourceUuid);
    assert.equal((await nicsOf(t, job.resourceUuid))[0]?.hostUuid, vm?.hostUuid);
    assert.ok((await dhcpNicsOn(t, vm!.hostUuid!)).includes(nic!.uuid));
  });
});

describe('NICs follow the VM', () => {
  test('stop takes the DHCP entry off the host, start puts it back; migrate moves it; the address stays', async () => {
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3] });
    const uuid = job.resourceUuid as string;
    const [nic] = await nicsOf(t, uuid);
    const first = (await vmOf(t, uuid))!.hostUuid!;
    assert.ok((await dhcpNicsOn(t, first)).includes(nic!.uuid));

    await ok(t, 'POST', `/v1/vms/${uuid}/actions/stop`, {});
    assert.equal((await nicsOf(t, uuid))[0]?.hostUuid, null);
    assert.ok(!(await dhcpNicsOn(t, first)).includes(nic!.uuid), 'no entry while stopped');

    await ok(t, 'POST', `/v1/vms/${uuid}/actions/start`, {});
    const started = (await vmOf(t, uuid))!.hostUuid!;
    assert.ok((await dhcpNicsOn(t, started)).includes(nic!.uuid));

    await ok(t, 'POST', `/v1/vms/${uuid}/actions/migrate`, {});
    const moved = (await vmOf(t, uuid))!.hostUuid!;
    assert.notEqual(moved, started);
    assert.equal((await nicsOf(t, uuid))[0]?.hostUuid, moved);
    assert.ok((await dhcpNicsOn(t, moved)).includes(nic!.uuid), 'served on the target');
    assert.ok(!(await dhcpNicsOn(t, started)).includes(nic!.uuid), 'gone from the source');
    assert.equal((await nicsOf(t, uuid))[0]?.ip, nic!.ip, 'the address stays with the NIC');
  });

  test('destroy takes the NICs off the host but keeps the addresses; recover keeps them; expunge releases them', async () => {
    const job = await createVm(t, env, { l3NetworkUuids: [env.l3] });
    const uuid = job.resourceUuid as string;
    const [nic] = await nicsOf(t, uuid);
    const host = (await vmOf(t, uuid))!.hostUuid!;
    await ok(t, 'DELETE', `/v1/vms/${uuid}`);
    assert.equal((await nicsOf(t, uuid))[0]?.hostUuid, null);
    assert.ok(!(await dhcpNicsOn(t, host)).includes(nic!.uuid));
    assert.equal((await addressesOf(t, uuid)).length, 1, 'a Destroyed VM keeps its address');
    await ok(t, 'POST', `/v1/vms/${uuid}/actions/recover`, {});
    assert.equal((await nicsOf(t, uuid))[0]?.ip, nic!.ip, 'recover gives it back unchanged');
    await ok(t, 'DELETE', `/v1/vms/${uuid}`);
    await ok(t, 'POST', `/v1/vms/${uuid}/actions/expunge`, {});
    assert.deepEqual(await nicsOf(t, uuid), []);
    assert.deepEqual(await addressesOf(t, uuid), []);
    const held = await t.db.db
      .selectFrom('ipAddresses')
      .select('uuid')
      .where('ip', '=', nic!.ip!)
      .where('l3NetworkUuid', '=', env.l3)
      .execute();
    assert.deepEqual(held, [], 'the address is free again');
  });

  test('afterwards the invariants hold', async () => {
    await assertInvariants(t.db.db);
  });
});

function vmBody(extra: Record<string, unknown>) {
  return { name: `nic-vm-${next()}`, imageUuid: env.image, instanceOfferingUuid: env.small, ...extra };
}
