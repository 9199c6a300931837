/**
 * Security groups on the hosts (docs/network.md "Security groups", fan-out): every host's
 * `sg.apply` state in the simulator after each change — members' hosts list their NICs with the
 * rules, other hosts list nothing; a change is sent to exactly the hosts it concerns; remote-group
 * rules carry the members' addresses and follow joins and leaves; a host losing its last member
 * gets a state without it; a stopped VM's host drops its NIC.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SgNic } from '../../src/contract/agent.js';
import { startTestNode, type TestNode } from '../support/node.js';
import {
  buildSgEnv,
  logSeq,
  type Nic,
  nicsByHost,
  type SgEnv,
  sgApplied,
  sgOf,
  succeed,
  vmWithNic,
} from './security-group-env.js';

let t: TestNode;
let env: SgEnv;
let H: string[];

before(async () => {
  t = await startTestNode();
  env = await buildSgEnv(t, { prefix: 'sgh', hosts: 4 });
  H = env.hosts;
});
after(() => t.stop());

const group = async (name: string) =>
  (await succeed(t.admin, 'POST', '/v1/security-groups', { name })).resourceUuid as string;
const rule = async (body: Record<string, unknown>) =>
  (await succeed(t.admin, 'POST', '/v1/security-group-rules', { direction: 'ingress', ...body }))
    .resourceUuid as string;
const addNics = (g: string, nics: Nic[]) =>
  succeed(t.admin, 'POST', `/v1/security-groups/${g}/actions/add-nics`, {
    vmNicUuids: nics.map((n) => n.uuid),
  });
const removeNics = (g: string, nics: Nic[]) =>
  succeed(t.admin, 'POST', `/v1/security-groups/${g}/actions/remove-nics`, {
    vmNicUuids: nics.map((n) => n.uuid),
  });

/** The NIC's entry in its host's state. */
function entry(nic: Nic, host = nic.host!): SgNic {
  const found = sgOf(t, env, host).find((n) => n.nicUuid === nic.uuid);
  assert.ok(found, `host ${host} lists NIC ${nic.uuid}`);
  return found;
}

const ruleUuids = (nic: Nic) =>
  entry(nic)
    .rules.map((r) => r.ruleUuid)
    .sort();
const remoteOf = (nic: Nic, ruleUuid: string) =>
  entry(nic).rules.find((r) => r.ruleUuid === ruleUuid)?.remoteCidrs;
const cidr = (n: Nic) => `${n.ip}/32`;
const sorted = (xs: string[]) => [...xs].sort();

describe('security groups on the hosts', () => {
  let web: string;
  let db: string;
  let a1: Nic; // on H0
  let a2: Nic; // on H1
  let b: Nic; // on H2
  let d: Nic; // on H3
  let http: string;
  let fromWeb: string;

  before(async () => {
    [a1, a2, b, d] = (await Promise.all(H.map((host) => vmWithNic(t, env, { host })))) as [
      Nic,
      Nic,
      Nic,
      Nic,
    ];
    web = await group('web');
    db = await group('db');
  });

  test('NICs in no group are not filtered: no host lists them', () => {
    for (const host of H) assert.deepEqual(sgOf(t, env, host), [], `host ${host}`);
  });

  test('add-nics: exactly the members’ hosts get the NICs with the group’s rules', async () => {
    http = await rule({ securityGroupUuid: web, protocol: 'tcp', portStart: 80 });
    const from = logSeq(t);
    await addNics(web, [a1, a2]);
    assert.deepEqual(sgApplied(t, env, from), sorted([H[0]!, H[1]!]), 'sent to the members’ hosts only');
    assert.deepEqual(nicsByHost(t, env), {
      [H[0]!]: [a1.uuid],
      [H[1]!]: [a2.uuid],
      [H[2]!]: [],
      [H[3]!]: [],
    });
    for (const nic of [a1, a2]) {
      const e = entry(nic);
      assert.deepEqual([e.mac, e.ip, e.securityGroupUuids], [nic.mac, nic.ip, [web]]);
      assert.deepEqual(
        e.rules.map((r) => [r.ruleUuid, r.direction, r.protocol, r.portStart, r.portEnd, r.remoteCidrs]),
        [[http, 'ingress', 'tcp', 80, 80, null]],
      );
    }
  });

  test('adding a member again is fine: one membership, same state', async () => {
    const job = await addNics(web, [a1]);
    assert.equal(job.state, 'Succeeded');
    const rows = await t.db.db
      .selectFrom('vmNicSecurityGroups')
      .select('vmNicUuid')
      .where('securityGroupUuid', '=', web)
      .execute();
    assert.deepEqual(sorted(rows.map((r) => r.vmNicUuid)), sorted([a1.uuid, a2.uuid]));
    assert.deepEqual(ruleUuids(a1), [http]);
  });

  test('a rule change reaches exactly the hosts running members, and is removed from them on delete', async () => {
    let from = logSeq(t);
    const ssh = await rule({
      securityGroupUuid: web,
      protocol: 'tcp',
      portStart: 22,
      remoteCidr: '192.0.2.0/24',
    });
    assert.deepEqual(sgApplied(t, env, from), sorted([H[0]!, H[1]!]));
    for (const nic of [a1, a2]) {
      assert.deepEqual(ruleUuids(nic), sorted([http, ssh]));
      assert.deepEqual(remoteOf(nic, ssh), ['192.0.2.0/24']);
    }
    assert.deepEqual(sgOf(t, env, H[2]!), []);
    assert.deepEqual(sgOf(t, env, H[3]!), []);
    from = logSeq(t);
    await succeed(t.admin, 'DELETE', `/v1/security-group-rules/${ssh}`);
    assert.deepEqual(sgApplied(t, env, from), sorted([H[0]!, H[1]!]));
    for (const nic of [a1, a2]) assert.deepEqual(ruleUuids(nic), [http]);
  });

  test('a remote-group rule carries the members’ addresses, on every host of the referencing group', async () => {
    fromWeb = await rule({
      securityGroupUuid: db,
      protocol: 'tcp',
      portStart: 5432,
      remoteSecurityGroupUuid: web,
    });
    const from = logSeq(t);
    await addNics(db, [d]);
    assert.deepEqual(sgApplied(t, env, from), [H[3]!]);
    assert.deepEqual(entry(d).securityGroupUuids, [db]);
    assert.deepEqual(remoteOf(d, fromWeb), sorted([cidr(a1), cidr(a2)]));
  });

  test('a member joining the remote group updates the referencing hosts too', async () => {
    const from = logSeq(t);
    await addNics(web, [b]);
    // web's members' hosts (H0, H1, H2: b's is new) and db's (H3: its peers changed)
    assert.deepEqual(sgApplied(t, env, from), sorted(H));
    assert.deepEqual(remoteOf(d, fromWeb), sorted([cidr(a1), cidr(a2), cidr(b)]));
    assert.deepEqual(ruleUuids(b), [http]);
    assert.deepEqual(nicsByHost(t, env)[H[2]!], [b.uuid]);
  });

  test('a NIC in two groups gets the union of their rules', async () => {
    await addNics(db, [b]);
    const e = entry(b);
    assert.deepEqual(sorted(e.securityGroupUuids), sorted([web, db]));
    assert.deepEqual(sorted(e.rules.map((r) => r.ruleUuid)), sorted([http, fromWeb]));
    // b is a peer of itself through db's rule
    assert.ok(e.rules.find((r) => r.ruleUuid === fromWeb)!.remoteCidrs!.includes(cidr(b)));
    await removeNics(db, [b]);
    assert.deepEqual(ruleUuids(b), [http]);
  });

  test('the last member leaving a host: that host gets a state without it; the peers lose its address', async () => {
    const from = logSeq(t);
    await removeNics(web, [a1]);
    // the hosts affected before the change (H0 included) and after it
    assert.deepEqual(sgApplied(t, env, from), sorted(H));
    assert.deepEqual(nicsByHost(t, env), {
      [H[0]!]: [],
      [H[1]!]: [a2.uuid],
      [H[2]!]: [b.uuid],
      [H[3]!]: [d.uuid],
    });
    assert.deepEqual(remoteOf(d, fromWeb), sorted([cidr(a2), cidr(b)]));
    // removing a NIC that is not a member is fine
    assert.equal((await removeNics(web, [a1])).state, 'Succeeded');
  });

  test('a group with members cannot be deleted; without them it can', async () => {
    const g = await group('short-lived');
    await addNics(g, [a1]);
    const refused = await t.admin.delete(`/v1/security-groups/${g}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'SECURITY_GROUP_IN_USE');
    assert.match(refused.body.error.message, /member NICs/);
    await removeNics(g, [a1]);
    assert.deepEqual(sgOf(t, env, H[0]!), []);
    await succeed(t.admin, 'DELETE', `/v1/security-groups/${g}`);
  });

  test('a stopped VM’s host loses its NIC’s rules; started again, its new host gets them', async () => {
    const from = logSeq(t);
    await succeed(t.admin, 'POST', `/v1/vms/${a2.vm}/actions/stop`, {});
    assert.ok(sgApplied(t, env, from).includes(H[1]!), 'the host it left was re-synced');
    assert.deepEqual(nicsByHost(t, env)[H[1]!], [], 'its old host no longer lists the NIC');
    // still a member: its address stays in the peers' sets (it keeps it while stopped)
    assert.deepEqual(remoteOf(d, fromWeb), sorted([cidr(a2), cidr(b)]));
    await succeed(t.admin, 'POST', `/v1/vms/${a2.vm}/actions/start`, {});
    const nic = await t.db.db
      .selectFrom('vmNics')
      .select('hostUuid')
      .where('uuid', '=', a2.uuid)
      .executeTakeFirstOrThrow();
    assert.ok(nic.hostUuid);
    assert.deepEqual(
      entry(a2, nic.hostUuid).rules.map((r) => r.ruleUuid),
      [http],
    );
    for (const host of H.filter((h) => h !== nic.hostUuid))
      assert.ok(!sgOf(t, env, host).some((n) => n.nicUuid === a2.uuid), `host ${host} does not list it`);
  });

  test('concurrent joins and rule creates: every member’s host ends with every rule and every peer', async () => {
    const burst = await group('burst');
    const peers = await group('burst-peers');
    const members = [a1, b, d];
    const jobs = await Promise.all([
      ...members.map((nic) =>
        t.admin.job('POST', `/v1/security-groups/${burst}/actions/add-nics`, { vmNicUuids: [nic.uuid] }),
      ),
      ...[1000, 2000, 3000, 4000, 5000].map((port) =>
        t.admin.job('POST', '/v1/security-group-rules', {
          securityGroupUuid: burst,
          direction: 'ingress',
          protocol: 'udp',
          portStart: port,
        }),
      ),
      t.admin.job('POST', '/v1/security-group-rules', {
        securityGroupUuid: burst,
        direction: 'ingress',
        protocol: 'all',
        remoteSecurityGroupUuid: burst,
      }),
      t.admin.job('POST', '/v1/security-group-rules', {
        securityGroupUuid: peers,
        direction: 'ingress',
        protocol: 'all',
        remoteSecurityGroupUuid: burst,
      }),
    ]);
    for (const job of jobs) assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const rules = await t.db.db
      .selectFrom('securityGroupRules')
      .select('uuid')
      .where('securityGroupUuid', '=', burst)
      .execute();
    assert.equal(rules.length, 6);
    for (const nic of members) {
      const e = entry(nic);
      const own = e.rules.filter((r) => rules.some((x) => x.uuid === r.ruleUuid));
      assert.deepEqual(
        sorted(own.map((r) => r.ruleUuid)),
        sorted(rules.map((r) => r.uuid)),
        `NIC on ${nic.host}`,
      );
      const self = own.find((r) => r.remoteCidrs !== null)!;
      assert.deepEqual(self.remoteCidrs, sorted(members.map(cidr)));
    }
    await removeNics(burst, members);
    // a1 is in no other group: its host lists it no more; b and d keep their other groups
    for (const nic of members) {
      const left = sgOf(t, env, nic.host!).find((n) => n.nicUuid === nic.uuid);
      assert.ok(!left?.securityGroupUuids.includes(burst));
      assert.equal(left === undefined, nic === a1);
    }
  });

  test('the API shows the same state as the simulator', async () => {
    const res = await t.admin.get(`/v1/simulator/network/hosts/${env.address.get(H[3]!)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.sg.state, sgOf(t, env, H[3]!));
  });
});

describe('security groups given at VM create', () => {
  let def: string;
  let first: Nic;
  let second: Nic;
  const defaultRule = async (direction: 'ingress' | 'egress', ipVersion: 4 | 6) =>
    (
      await t.db.db
        .selectFrom('securityGroupRules')
        .select('uuid')
        .where('securityGroupUuid', '=', def)
        .where('direction', '=', direction)
        .where('ipVersion', '=', ipVersion)
        .executeTakeFirstOrThrow()
    ).uuid;

  before(async () => {
    def = (await t.admin.get('/v1/security-groups?q=isDefault=true')).body.items[0].uuid;
    first = await vmWithNic(t, env, { host: H[0]!, groups: [def] });
    second = await vmWithNic(t, env, { host: H[1]!, groups: [def] });
  });

  test('the default group: a new member’s host gets its NIC with the default rules and the members’ addresses', async () => {
    const ingressV4 = await defaultRule('ingress', 4);
    const ingressV6 = await defaultRule('ingress', 6);
    for (const nic of [first, second]) {
      assert.deepEqual(entry(nic).securityGroupUuids, [def]);
      // an IPv6 rule carries no IPv4 address
      assert.deepEqual(remoteOf(nic, ingressV6), []);
      const egress = entry(nic).rules.filter((r) => r.direction === 'egress');
      assert.deepEqual(egress.map((r) => [r.protocol, r.ipVersion, r.remoteCidrs]).sort(), [
        ['all', 4, null],
        ['all', 6, null],
      ]);
    }
    // the second VM's host was synced after both joined
    assert.deepEqual(remoteOf(second, ingressV4), sorted([cidr(first), cidr(second)]));
  });

  test('the hosts of the other members learn of a member joining at VM create', async () => {
    assert.deepEqual(remoteOf(first, await defaultRule('ingress', 4)), sorted([cidr(first), cidr(second)]));
  });

  test('another account’s NIC cannot be put in a group: a 404 naming it', async () => {
    const name = `sgh-tenant-${Math.random().toString(36).slice(2, 6)}`;
    await succeed(t.admin, 'POST', '/v1/accounts', { name, password: 'tenant-password' });
    const tenant = await t.anon.login(name, 'tenant-password');
    const theirs = await vmWithNic(t, env, { api: tenant });
    const mine = await group('admins-only');
    const res = await t.admin.post(`/v1/security-groups/${mine}/actions/add-nics`, {
      vmNicUuids: [theirs.uuid],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VM_NIC_NOT_FOUND');
    assert.match(res.body.error.message, new RegExp(theirs.uuid));
    // their own group takes it
    const own = (await succeed(tenant, 'POST', '/v1/security-groups', { name: 'own' })).resourceUuid;
    await succeed(tenant, 'POST', `/v1/security-groups/${own}/actions/add-nics`, {
      vmNicUuids: [theirs.uuid],
    });
    assert.deepEqual(entry(theirs).securityGroupUuids, [own]);
  });
});
