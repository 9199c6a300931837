/**
 * Security groups and rules through the API (no NICs here; the hosts' side is in
 * security-group-hosts.test.ts): the default group made once per account under concurrent first
 * uses, names, the default group's protections, rule validation naming fields, duplicates
 * (concurrent ones too), cross-account refusals, delete refusals.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Api, startTestNode, type TestNode } from '../support/node.js';

let t: TestNode;
let seq = 0;
const next = () => ++seq;

async function tenant(): Promise<{ api: Api; uuid: string }> {
  const name = `sg-tenant-${next()}`;
  const acct = await t.admin.job('POST', '/v1/accounts', { name, password: 'tenant-password' });
  assert.equal(acct.state, 'Succeeded', JSON.stringify(acct));
  return { api: await t.anon.login(name, 'tenant-password'), uuid: acct.resourceUuid };
}

async function succeed(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

const newGroup = async (api: Api, name = `sg-${next()}`) =>
  (await succeed(api, 'POST', '/v1/security-groups', { name })).resourceUuid as string;

const defaultGroups = (account: string) =>
  t.db.db
    .selectFrom('securityGroups')
    .selectAll()
    .where('accountUuid', '=', account)
    .where('isDefault', '=', true)
    .execute();

const rulesOf = (group: string) =>
  t.db.db
    .selectFrom('securityGroupRules')
    .selectAll()
    .where('securityGroupUuid', '=', group)
    .orderBy('uuid')
    .execute();

const fieldsOf = (body: any) =>
  (body.error.details.fields as Array<{ field: string }>).map((f) => f.field).sort();

before(async () => {
  t = await startTestNode();
});
after(() => t.stop());

describe('the default security group', () => {
  test('50 concurrent first lists make exactly one, with its four rules', async () => {
    const { api, uuid } = await tenant();
    assert.equal((await defaultGroups(uuid)).length, 0, 'made on first use, not with the account');
    const lists = await Promise.all(Array.from({ length: 50 }, () => api.get('/v1/security-groups')));
    for (const res of lists) {
      assert.equal(res.status, 200);
      // every answer already lists it: it is made before the read
      assert.equal(res.body.items.filter((g: any) => g.isDefault).length, 1, JSON.stringify(res.body));
    }
    const made = await defaultGroups(uuid);
    assert.equal(made.length, 1);
    const group = made[0]!;
    assert.equal(group.name, 'default');
    assert.ok(lists.every((r) => r.body.items.find((g: any) => g.isDefault).uuid === group.uuid));
    const rules = (await rulesOf(group.uuid)).map((r) => ({
      direction: r.direction,
      protocol: r.protocol,
      ipVersion: r.ipVersion,
      remoteCidr: r.remoteCidr,
      remoteSecurityGroupUuid: r.remoteSecurityGroupUuid,
      portStart: r.portStart,
    }));
    const sorted = (xs: typeof rules) =>
      [...xs].sort((a, b) => `${a.direction}${a.ipVersion}`.localeCompare(`${b.direction}${b.ipVersion}`));
    assert.deepEqual(
      sorted(rules),
      sorted([
        {
          direction: 'egress',
          protocol: 'all',
          ipVersion: 4,
          remoteCidr: null,
          remoteSecurityGroupUuid: null,
          portStart: null,
        },
        {
          direction: 'egress',
          protocol: 'all',
          ipVersion: 6,
          remoteCidr: null,
          remoteSecurityGroupUuid: null,
          portStart: null,
        },
        {
          direction: 'ingress',
          protocol: 'all',
          ipVersion: 4,
          remoteCidr: null,
          remoteSecurityGroupUuid: group.uuid,
          portStart: null,
        },
        {
          direction: 'ingress',
          protocol: 'all',
          ipVersion: 6,
          remoteCidr: null,
          remoteSecurityGroupUuid: group.uuid,
          portStart: null,
        },
      ]),
    );
    const created = await t.db.db
      .selectFrom('events')
      .select('type')
      .where('resourceUuid', '=', group.uuid)
      .where('type', '=', 'security-group.created')
      .execute();
    assert.equal(created.length, 1, 'one creation event');
  });

  test('50 concurrent first group creates (and lists) make exactly one default group', async () => {
    const { api, uuid } = await tenant();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? api.job('POST', '/v1/security-groups', { name: `burst-${i}` })
          : api.get('/v1/security-group-rules'),
      ),
    );
    for (const [i, r] of results.entries()) {
      if (i % 2 === 0) assert.equal(r.state, 'Succeeded', JSON.stringify(r));
      else assert.equal(r.status, 200);
    }
    assert.equal((await defaultGroups(uuid)).length, 1);
    const all = await t.db.db
      .selectFrom('securityGroups')
      .select('name')
      .where('accountUuid', '=', uuid)
      .execute();
    assert.equal(all.length, 26);
  });

  test('cannot be deleted nor renamed; its description can change; no other group may be named default', async () => {
    const { api } = await tenant();
    const list = await api.get('/v1/security-groups?q=isDefault=true');
    const def = list.body.items[0].uuid as string;
    const del = await api.delete(`/v1/security-groups/${def}`);
    assert.equal(del.status, 409);
    assert.equal(del.body.error.code, 'SECURITY_GROUP_DEFAULT');
    const rename = await api.patch(`/v1/security-groups/${def}`, { name: 'other' });
    assert.equal(rename.status, 409);
    assert.equal(rename.body.error.code, 'SECURITY_GROUP_DEFAULT');
    const job = await succeed(api, 'PATCH', `/v1/security-groups/${def}`, { description: 'ours' });
    assert.equal(job.result.description, 'ours');
    const taken = await api.post('/v1/security-groups', { name: 'default' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'SECURITY_GROUP_NAME_TAKEN');
    const other = await newGroup(api);
    const renamed = await api.patch(`/v1/security-groups/${other}`, { name: 'default' });
    assert.equal(renamed.status, 409);
    assert.equal(renamed.body.error.code, 'SECURITY_GROUP_NAME_TAKEN');
  });
});

describe('security groups', () => {
  test('names are unique per account, not across accounts', async () => {
    const a = await tenant();
    const b = await tenant();
    await newGroup(a.api, 'web');
    const again = await a.api.post('/v1/security-groups', { name: 'web' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'SECURITY_GROUP_NAME_TAKEN');
    await newGroup(b.api, 'web');
    // a rename onto a taken name fails the update job with the same code
    const db = await newGroup(a.api, 'db');
    const job = await a.api.job('PATCH', `/v1/security-groups/${db}`, { name: 'web' });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'SECURITY_GROUP_NAME_TAKEN');
  });

  test('another account’s group is a 404 for every operation (a 400 when named in a body); the admin may act on it', async () => {
    const a = await tenant();
    const b = await tenant();
    const group = await newGroup(a.api);
    const rule = (
      await succeed(a.api, 'POST', '/v1/security-group-rules', {
        securityGroupUuid: group,
        direction: 'ingress',
        protocol: 'tcp',
        portStart: 22,
      })
    ).resourceUuid as string;
    const attempts = [
      await b.api.get(`/v1/security-groups/${group}`),
      await b.api.patch(`/v1/security-groups/${group}`, { description: 'x' }),
      await b.api.delete(`/v1/security-groups/${group}`),
      await b.api.post(`/v1/security-groups/${group}/actions/add-nics`, {
        vmNicUuids: [crypto.randomUUID()],
      }),
      await b.api.get(`/v1/security-group-rules/${rule}`),
      await b.api.delete(`/v1/security-group-rules/${rule}`),
    ];
    for (const res of attempts) assert.equal(res.status, 404, JSON.stringify(res.body));
    const inBody = await b.api.post('/v1/security-group-rules', {
      securityGroupUuid: group,
      direction: 'ingress',
      protocol: 'icmp',
    });
    assert.equal(inBody.status, 400, JSON.stringify(inBody.body));
    assert.equal(inBody.body.error.code, 'SECURITY_GROUP_NOT_FOUND');
    assert.equal(
      (await b.api.get(`/v1/security-group-rules?q=securityGroupUuid=${group}`)).body.items.length,
      0,
    );
    // a rule of b's group may not name a's group as remote group
    const own = await newGroup(b.api);
    const cross = await b.api.post('/v1/security-group-rules', {
      securityGroupUuid: own,
      direction: 'ingress',
      protocol: 'all',
      remoteSecurityGroupUuid: group,
    });
    assert.equal(cross.status, 400);
    assert.deepEqual(fieldsOf(cross.body), ['remoteSecurityGroupUuid']);
    // the admin's rule in a's group belongs to a
    const byAdmin = await succeed(t.admin, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: group,
      direction: 'egress',
      protocol: 'udp',
      portStart: 53,
    });
    assert.equal(byAdmin.result.accountUuid, a.uuid);
    assert.equal((await rulesOf(group)).length, 2);
  });

  test('a group named as remote group by another group’s rule cannot be deleted until the rule goes', async () => {
    const { api } = await tenant();
    const web = await newGroup(api);
    const db = await newGroup(api);
    const rule = (
      await succeed(api, 'POST', '/v1/security-group-rules', {
        securityGroupUuid: db,
        direction: 'ingress',
        protocol: 'tcp',
        portStart: 5432,
        remoteSecurityGroupUuid: web,
      })
    ).resourceUuid as string;
    const refused = await api.delete(`/v1/security-groups/${web}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'SECURITY_GROUP_IN_USE');
    assert.match(refused.body.error.message, /remote group of rules of other groups/);
    assert.match(refused.body.error.message, new RegExp(db));
    await succeed(api, 'DELETE', `/v1/security-group-rules/${rule}`);
    await succeed(api, 'DELETE', `/v1/security-groups/${web}`);
    // a group whose own rule names itself goes, with its rules
    const self = await newGroup(api);
    await succeed(api, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: self,
      direction: 'ingress',
      protocol: 'all',
      remoteSecurityGroupUuid: self,
    });
    await succeed(api, 'DELETE', `/v1/security-groups/${self}`);
    assert.equal((await rulesOf(self)).length, 0);
    assert.equal((await api.get(`/v1/security-groups/${self}`)).status, 404);
  });
});

describe('security-group rules', () => {
  let api: Api;
  let group: string;
  let other: string;
  before(async () => {
    ({ api } = await tenant());
    group = await newGroup(api);
    other = await newGroup(api);
  });

  const create = (body: Record<string, unknown>) =>
    api.post('/v1/security-group-rules', { securityGroupUuid: group, direction: 'ingress', ...body });

  test('bad rules are refused naming every bad field, and change nothing', async () => {
    const before = (await rulesOf(group)).length;
    const cases: Array<[Record<string, unknown>, string[]]> = [
      [{ protocol: 'icmp', portStart: 1, portEnd: 2 }, ['portEnd', 'portStart']],
      [{ protocol: 'all', portStart: 80 }, ['portStart']],
      [{ protocol: 'tcp', portStart: 90, portEnd: 80 }, ['portEnd']],
      [{ protocol: 'udp', portEnd: 80 }, ['portStart']],
      [{ protocol: 'tcp', remoteCidr: '10.0.0.1/24' }, ['remoteCidr']],
      [{ protocol: 'tcp', remoteCidr: 'nonsense' }, ['remoteCidr']],
      [{ protocol: 'tcp', remoteCidr: '2001:db8::/32', ipVersion: 4 }, ['remoteCidr']],
      [{ protocol: 'tcp', remoteCidr: '10.0.0.0/8', ipVersion: 6 }, ['remoteCidr']],
      [
        { protocol: 'tcp', remoteCidr: '10.0.0.0/8', remoteSecurityGroupUuid: other },
        ['remoteSecurityGroupUuid'],
      ],
      [{ protocol: 'tcp', remoteSecurityGroupUuid: crypto.randomUUID() }, ['remoteSecurityGroupUuid']],
      [
        {
          protocol: 'icmp',
          portStart: 5,
          remoteCidr: '1.2.3.4/8',
          remoteSecurityGroupUuid: crypto.randomUUID(),
        },
        ['portStart', 'remoteCidr', 'remoteSecurityGroupUuid'],
      ],
    ];
    for (const [body, fields] of cases) {
      const res = await create(body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.deepEqual([...new Set(fieldsOf(res.body))], fields, JSON.stringify(body));
    }
    // the contract refuses what is not a rule at all
    const schema = await create({ protocol: 'gre' });
    assert.equal(schema.status, 400);
    const noGroup = await api.post('/v1/security-group-rules', {
      securityGroupUuid: crypto.randomUUID(),
      direction: 'ingress',
      protocol: 'tcp',
    });
    assert.equal(noGroup.status, 400);
    assert.equal(noGroup.body.error.details.fields[0].field, 'securityGroupUuid');
    assert.equal((await rulesOf(group)).length, before);
  });

  test('defaults: portEnd = portStart, ipVersion from the CIDR, CIDRs stored canonical', async () => {
    const ssh = await succeed(api, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: group,
      direction: 'ingress',
      protocol: 'tcp',
      portStart: 22,
      remoteCidr: '2001:0db8:0000::/48',
    });
    assert.equal(ssh.result.portEnd, 22);
    assert.equal(ssh.result.ipVersion, 6);
    assert.equal(ssh.result.remoteCidr, '2001:db8::/48');
    const any = await succeed(api, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: group,
      direction: 'egress',
      protocol: 'all',
    });
    assert.equal(any.result.ipVersion, 4);
    assert.equal(any.result.remoteCidr, null);
    assert.equal(any.result.portStart, null);
  });

  test('the same rule twice is refused, spelled differently or sent concurrently', async () => {
    const body = { protocol: 'tcp', portStart: 8080, portEnd: 8080, remoteCidr: '192.168.0.0/16' };
    assert.equal((await create(body)).status, 202);
    const again = await create({ ...body, portEnd: undefined });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'SECURITY_GROUP_RULE_EXISTS');
    const v6 = { protocol: 'udp', portStart: 500, remoteCidr: '::/0' };
    assert.equal((await create(v6)).status, 202);
    const spelled = await create({ ...v6, remoteCidr: '0:0::0/0' });
    assert.equal(spelled.status, 409);
    assert.equal(spelled.body.error.code, 'SECURITY_GROUP_RULE_EXISTS');
    const burst = await Promise.all(
      Array.from({ length: 20 }, () => create({ protocol: 'tcp', portStart: 9000, portEnd: 9100 })),
    );
    assert.equal(burst.filter((r) => r.status === 202).length, 1);
    assert.ok(
      burst.filter((r) => r.status !== 202).every((r) => r.body.error.code === 'SECURITY_GROUP_RULE_EXISTS'),
    );
    // the same ports for another protocol, direction or group are other rules
    assert.equal((await create({ protocol: 'udp', portStart: 9000, portEnd: 9100 })).status, 202);
    assert.equal(
      (await create({ protocol: 'tcp', portStart: 9000, portEnd: 9100, direction: 'egress' })).status,
      202,
    );
    assert.equal(
      (await create({ protocol: 'tcp', portStart: 9000, portEnd: 9100, securityGroupUuid: other })).status,
      202,
    );
  });

  test('delete removes the rule; a deleted rule is gone', async () => {
    const made = await succeed(api, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: group,
      direction: 'ingress',
      protocol: 'icmp',
    });
    await succeed(api, 'DELETE', `/v1/security-group-rules/${made.resourceUuid}`);
    assert.equal((await api.get(`/v1/security-group-rules/${made.resourceUuid}`)).status, 404);
    assert.equal((await api.delete(`/v1/security-group-rules/${made.resourceUuid}`)).status, 404);
  });

  test('add-nics with a NIC that does not exist is a 400 naming it', async () => {
    const nic = crypto.randomUUID();
    const res = await api.post(`/v1/security-groups/${group}/actions/add-nics`, { vmNicUuids: [nic] });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VM_NIC_NOT_FOUND');
    assert.match(res.body.error.message, new RegExp(nic));
  });
});
