/**
 * The rules between fields (KindContract.createRules) as the API document states them and as the
 * server enforces them agree both ways (issue 16 item 4): for bodies on each side of each rule,
 * the documented request schema accepts exactly those the server does not refuse for that rule.
 * The server's refusal is recognised by its own words for the rule (a field-level problem).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newAjv } from '../support/document-check.js';
import { startTestNode, type TestNode } from '../support/node.js';
import { buildNetEnv, type NetEnv } from './network-fixtures.js';

type Json = Record<string, any>;
const U = '5b1c3f8e-0000-4000-8000-0000000000aa';
let t: TestNode;
let env: NetEnv;
let doc: Json;
const ajv = newAjv();

before(async () => {
  t = await startTestNode();
  env = await buildNetEnv(t, { hosts: 1, prefix: 'rules' });
  doc = (await t.anon.get('/v1/openapi.json')).body;
});
after(() => t?.stop());

interface Case {
  body: Json;
  /** the rule holds for this body */
  valid: boolean;
}

async function agree(kind: string, rule: RegExp, cases: Case[]): Promise<void> {
  const schema = doc.paths[`/v1/${kind}`].post.requestBody.content['application/json'].schema;
  assert.ok(schema.oneOf ?? schema.anyOf, `${kind}: the document states the rule`);
  assert.match(schema.description ?? '', /Rule: /);
  const validate = ajv.compile(schema);
  for (const { body, valid } of cases) {
    const what = `${kind} ${JSON.stringify(body)}`;
    assert.equal(validate(body), valid, `${what}: the document says ${valid ? 'valid' : 'invalid'}`);
    const res = await t.admin.post(`/v1/${kind}`, body);
    const problems = (res.body?.error?.details?.fields ?? []) as { field: string; problem: string }[];
    const refusedForRule = res.status === 400 && problems.some((p) => rule.test(p.problem));
    assert.equal(
      refusedForRule,
      !valid,
      `${what}: the server answered ${res.status} ${JSON.stringify(res.body)}`,
    );
  }
}

describe('cross-field rules: document and server agree', () => {
  test('a volume: exactly one of diskOfferingUuid and size', async () => {
    await agree('volumes', /exactly one of diskOfferingUuid and size/, [
      { body: { name: 'r-v1' }, valid: false },
      { body: { name: 'r-v2', size: 1024 ** 3 }, valid: true },
      { body: { name: 'r-v3', diskOfferingUuid: U }, valid: true },
      { body: { name: 'r-v4', diskOfferingUuid: U, size: 1024 ** 3 }, valid: false },
    ]);
  });

  test('a VM: an instance offering, or cpu and memory, not both', async () => {
    const base = { imageUuid: env.image };
    await agree('vms', /not both|required without an instance offering/, [
      { body: { ...base, name: 'r-vm1', instanceOfferingUuid: env.small }, valid: true },
      { body: { ...base, name: 'r-vm2', cpu: 1, memory: 256 * 1024 ** 2 }, valid: true },
      { body: { ...base, name: 'r-vm3' }, valid: false },
      { body: { ...base, name: 'r-vm4', cpu: 1 }, valid: false },
      { body: { ...base, name: 'r-vm5', instanceOfferingUuid: env.small, cpu: 1 }, valid: false },
    ]);
  });

  test('an IP range: cidr, or startIp and endIp, not both', async () => {
    const base = { l3NetworkUuid: env.l3 };
    await agree('ip-ranges', /give cidr, or startIp and endIp/, [
      { body: { ...base, name: 'r-r1' }, valid: false },
      { body: { ...base, name: 'r-r2', cidr: `${env.subnet}.0/24` }, valid: true },
      {
        body: {
          ...base,
          name: 'r-r3',
          startIp: `${env.subnet}.2`,
          endIp: `${env.subnet}.5`,
          prefixLength: 24,
        },
        valid: true,
      },
      {
        body: {
          ...base,
          name: 'r-r4',
          cidr: `${env.subnet}.0/24`,
          startIp: `${env.subnet}.2`,
          endIp: `${env.subnet}.5`,
        },
        valid: false,
      },
    ]);
  });

  test('an L2 network: the fields of its type and no others', async () => {
    const base = { zoneUuid: env.zone };
    await agree('l2-networks', /required for a|not allowed for a/, [
      { body: { ...base, name: 'r-l1', type: 'no-vlan', physicalInterface: 'eth9' }, valid: true },
      { body: { ...base, name: 'r-l2', type: 'no-vlan' }, valid: false },
      { body: { ...base, name: 'r-l3', type: 'vlan', physicalInterface: 'eth9', vlan: 100 }, valid: true },
      { body: { ...base, name: 'r-l4', type: 'vlan', physicalInterface: 'eth9' }, valid: false },
      { body: { ...base, name: 'r-l5', type: 'no-vlan', physicalInterface: 'eth8', vlan: 7 }, valid: false },
      { body: { ...base, name: 'r-l6', type: 'vxlan', vxlanPoolUuid: U }, valid: true },
      { body: { ...base, name: 'r-l7', type: 'vxlan' }, valid: false },
      { body: { ...base, name: 'r-l8', type: 'vxlan', vxlanPoolUuid: U, vlan: 5 }, valid: false },
    ]);
  });

  test('an L3 network: virtualRouterOfferingUuid only with the virtual-router provider', async () => {
    const base = { l2NetworkUuid: env.l2, category: 'private' };
    await agree('l3-networks', /only with provider virtual-router/, [
      { body: { ...base, name: 'r-n1' }, valid: true },
      {
        body: { ...base, name: 'r-n2', provider: 'virtual-router', virtualRouterOfferingUuid: U },
        valid: true,
      },
      { body: { ...base, name: 'r-n3', virtualRouterOfferingUuid: U }, valid: false },
      { body: { ...base, name: 'r-n4', provider: 'flat', virtualRouterOfferingUuid: U }, valid: false },
    ]);
  });

  test('a port-forwarding rule: an empty allowedCidr is refused by the schema itself', async () => {
    const schema = doc.paths['/v1/port-forwarding-rules'].post.requestBody.content['application/json'].schema;
    assert.equal(schema.properties.allowedCidr.minLength, 1);
    const res = await t.admin.post('/v1/port-forwarding-rules', {
      name: 'r-pf',
      vipUuid: U,
      protocol: 'tcp',
      vipPortStart: 80,
      privatePortStart: 80,
      allowedCidr: '',
    });
    assert.equal(res.status, 400);
    assert.ok(res.body.error.details.fields.some((f: { field: string }) => f.field === 'allowedCidr'));
  });
});
