/**
 * The security-group rollback table (DESIGN.md §7): for every security-group and rule chain and
 * every step of it, a failure injected at that step fails the job with the injected error, rolls
 * every done step back and leaves the groups, rules, memberships AND every host's firewall state
 * as they were. A failed `sg.apply` on a member's host rolls back the same way (the rollback
 * re-syncs, so hosts that already took the change get the old state back). Each row has a group
 * of its own (a member on host 0, a peer group naming it as remote group with a member on host 2);
 * the VMs are shared. A chain registered without rows fails coverage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertTableCovers, registeredSteps } from '../support/chains.js';
import { assertInvariants } from '../support/invariants.js';
import { startTestNode, type TestNode } from '../support/node.js';
import { buildSgEnv, type Nic, type SgEnv, sgOf, succeed, vmWithNic } from './security-group-env.js';
import { clearFaults, fault } from './vm-env.js';

let t: TestNode;
let env: SgEnv;
let nics: Nic[];
let seq = 0;
const next = () => ++seq;

before(async () => {
  t = await startTestNode();
  env = await buildSgEnv(t, { prefix: 'sgr', hosts: 3 });
  nics = await Promise.all(env.hosts.map((host) => vmWithNic(t, env, { host })));
});
after(() => t.stop());

interface Fixture {
  group: string;
  rule: string;
}

/** group (rule: tcp 80; member: the NIC on host 0) and a peer group naming it (member on host 2) */
async function fixture(): Promise<Fixture> {
  const mk = async (name: string) =>
    (await succeed(t.admin, 'POST', '/v1/security-groups', { name })).resourceUuid as string;
  const group = await mk(`rb-${next()}`);
  const peer = await mk(`rb-peer-${next()}`);
  const rule = (
    await succeed(t.admin, 'POST', '/v1/security-group-rules', {
      securityGroupUuid: group,
      direction: 'ingress',
      protocol: 'tcp',
      portStart: 80,
    })
  ).resourceUuid as string;
  await succeed(t.admin, 'POST', '/v1/security-group-rules', {
    securityGroupUuid: peer,
    direction: 'ingress',
    protocol: 'all',
    remoteSecurityGroupUuid: group,
  });
  const add = (g: string, nic: Nic) =>
    succeed(t.admin, 'POST', `/v1/security-groups/${g}/actions/add-nics`, { vmNicUuids: [nic.uuid] });
  await add(group, nics[0]!);
  await add(peer, nics[2]!);
  return { group, rule };
}

type Request = [method: string, path: string, body?: unknown];

const CHAINS: Record<string, (f: Fixture) => Request> = {
  'security-group.create': () => ['POST', '/v1/security-groups', { name: `rb-new-${next()}` }],
  'security-group.update': (f) => ['PATCH', `/v1/security-groups/${f.group}`, { description: 'changed' }],
  'security-group.delete': () => ['DELETE', '/v1/security-groups/<empty>'],
  'security-group.add-nics': (f) => [
    'POST',
    `/v1/security-groups/${f.group}/actions/add-nics`,
    { vmNicUuids: [nics[1]!.uuid] },
  ],
  'security-group.remove-nics': (f) => [
    'POST',
    `/v1/security-groups/${f.group}/actions/remove-nics`,
    { vmNicUuids: [nics[0]!.uuid] },
  ],
  'security-group-rule.create': (f) => [
    'POST',
    '/v1/security-group-rules',
    {
      securityGroupUuid: f.group,
      direction: 'egress',
      protocol: 'udp',
      portStart: 53,
      remoteCidr: '10.0.0.0/8',
    },
  ],
  'security-group-rule.delete': (f) => ['DELETE', `/v1/security-group-rules/${f.rule}`],
};

/** Steps of every chain, written out (checked against the registered ones). */
const STEPS: Record<string, string[]> = {
  'security-group.create': ['create-record'],
  'security-group.update': ['apply'],
  'security-group.delete': ['delete-record'],
  'security-group.add-nics': ['read-members', 'change-members', 'sync-hosts'],
  'security-group.remove-nics': ['read-members', 'change-members', 'sync-hosts'],
  'security-group-rule.create': ['create-record', 'sync-hosts'],
  'security-group-rule.delete': ['delete-record', 'sync-hosts'],
};
const AT_ADMISSION = new Set([
  'security-group.create/create-record',
  'security-group-rule.create/create-record',
]);
/** chains that send sg.apply to a member's host (host 0) */
const SYNCING = Object.keys(STEPS).filter((k) => STEPS[k]!.includes('sync-hosts'));

/** What a rollback must restore: the database rows and what every host's firewall was told. */
async function footprint() {
  const db = t.db.db;
  return {
    groups: await db
      .selectFrom('securityGroups')
      .select(['uuid', 'name', 'description', 'isDefault', 'accountUuid'])
      .orderBy('uuid')
      .execute(),
    rules: await db
      .selectFrom('securityGroupRules')
      .select([
        'uuid',
        'securityGroupUuid',
        'accountUuid',
        'direction',
        'protocol',
        'portStart',
        'portEnd',
        'remoteCidr',
        'remoteSecurityGroupUuid',
        'ipVersion',
        'description',
      ])
      .orderBy('uuid')
      .execute(),
    members: await db
      .selectFrom('vmNicSecurityGroups')
      .select(['vmNicUuid', 'securityGroupUuid'])
      .orderBy('vmNicUuid')
      .orderBy('securityGroupUuid')
      .execute(),
    hosts: Object.fromEntries(env.hosts.map((h) => [h, sgOf(t, env, h)])),
  };
}

async function run(kind: string, point: string, o: { code: string; host?: string; atAdmission?: boolean }) {
  const f = await fixture();
  let [method, path, body] = CHAINS[kind]!(f);
  if (path.includes('<empty>')) {
    // a group that can be deleted: no members, named by no rule
    const empty = (await succeed(t.admin, 'POST', '/v1/security-groups', { name: `rb-empty-${next()}` }))
      .resourceUuid as string;
    path = path.replace('<empty>', empty);
  }
  const before = await footprint();
  await fault(t, {
    point,
    error: { code: o.code },
    ...(o.host ? { host: o.host, times: 1 } : {}),
  });
  let job: any;
  try {
    job = await t.admin.job(method!, path, body);
  } finally {
    await clearFaults(t);
  }
  assert.equal(job.kind, kind, JSON.stringify(job));
  if (o.atAdmission) {
    // done with the admission, in its transaction: the step's fault point is never reached
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    return;
  }
  assert.equal(job.state, 'Failed', JSON.stringify(job));
  assert.equal(job.error.code, o.code);
  assert.equal(job.error.details?.rollbackFailures, undefined, 'every rollback succeeded');
  assert.deepEqual(job.steps.done, [], 'every done step was rolled back');
  assert.deepEqual(await footprint(), before);
}

describe('security-group rollback table: a failure at every step leaves nothing behind', () => {
  test('the table has a row for every registered chain × step', () => {
    assertTableCovers(
      registeredSteps(t.node, ['security-group.', 'security-group-rule.']),
      Object.entries(STEPS).flatMap(([kind, steps]) => steps.map((step) => ({ kind, step }))),
    );
  });

  for (const [kind, steps] of Object.entries(STEPS)) {
    for (const step of steps) {
      const atAdmission = AT_ADMISSION.has(`${kind}/${step}`);
      test(`${kind} / ${step}${atAdmission ? ' (done at admission: never reached)' : ''}`, () =>
        run(kind, `step:${kind}/${step}`, {
          code: `FAULT_${step.toUpperCase().replace(/-/g, '_')}`,
          atAdmission,
        }));
    }
  }

  for (const kind of SYNCING) {
    test(`${kind}: sg.apply fails on a member's host`, () =>
      run(kind, 'command:sg.apply', { code: 'SG_APPLY_FAILED', host: env.address.get(env.hosts[0]!)! }));
  }

  test('afterwards the invariants hold', async () => {
    await assertInvariants(t.db.db);
  });
});
