/**
 * Neutron lists, errors and tenants through the façade: limit/marker paging with next and
 * previous links (every item once, in id order), filters, errors in NeutronError's shape with
 * the bad field named and nothing changed, and one project never seeing or touching another's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';
import { allPages, OsClient } from './openstack-fixtures.js';
import { buildRouterEnv, type RouterEnv, tenant, vmOn } from './router-fixtures.js';

let t: TestNode;
let env: RouterEnv;
let alice: OsClient;
let bob: OsClient;
let aliceApi: Awaited<ReturnType<typeof tenant>>['api'];

before(async () => {
  t = await startTestNode();
  env = await buildRouterEnv(t, { prefix: 'osl' });
  const a = await tenant(t, 'osl-alice');
  aliceApi = a.api;
  alice = OsClient.of(a.api);
  bob = OsClient.of((await tenant(t, 'osl-bob')).api);
});
after(() => t.stop());

const count = async (c: OsClient, path: string, key: string) =>
  (await c.get(path)).body[key].length as number;

test('paging: limit and marker walk every item once in id order, with next and previous links', async () => {
  const made: string[] = [];
  for (let i = 0; i < 7; i++)
    made.push(
      (
        await alice.expect(201, 'POST', '/network/v2.0/security-groups', {
          security_group: { name: `page-${i}` },
        })
      ).body.security_group.id,
    );
  const all = (await alice.get('/network/v2.0/security-groups')).body.security_groups.map(
    (g: { id: string }) => g.id,
  );
  assert.equal(all.length, 8, "seven and the project's default group");
  assert.deepEqual(all, [...all].sort(), 'in id order');
  for (const id of made) assert.ok(all.includes(id));

  const { seen, pages } = await allPages(
    alice,
    '/network/v2.0/security-groups?limit=3',
    'security_groups',
    3,
  );
  assert.deepEqual(
    seen.map((g) => g.id),
    all,
  );
  assert.deepEqual(
    pages.map((p) => p.body.security_groups.length),
    [3, 3, 2],
  );
  const rels = (p: { body: { security_groups_links: { rel: string }[] } }) =>
    p.body.security_groups_links.map((l) => l.rel).sort();
  assert.deepEqual(rels(pages[0]!), ['next']);
  assert.deepEqual(rels(pages[1]!), ['next', 'previous']);
  assert.deepEqual(rels(pages[2]!), ['previous']);
  // the previous link of page 2 gives page 1 back
  const prev = pages[1]!.body.security_groups_links.find((l: { rel: string }) => l.rel === 'previous');
  const back = await alice.get(new URL(prev.href).pathname + new URL(prev.href).search);
  assert.deepEqual(
    back.body.security_groups.map((g: { id: string }) => g.id),
    all.slice(0, 3),
  );

  // routers page the same way (their rows are the façade's own)
  for (let i = 0; i < 4; i++)
    await alice.expect(201, 'POST', '/network/v2.0/routers', { router: { name: `pr-${i}` } });
  const routers = await allPages(alice, '/network/v2.0/routers?limit=3', 'routers', 3);
  assert.equal(routers.seen.length, 4);
  assert.equal(new Set(routers.seen.map((r) => r.id)).size, 4);

  // bad paging parameters name themselves
  const badLimit = await alice.expect(400, 'GET', '/network/v2.0/networks?limit=many');
  assert.match(badLimit.body.NeutronError.message, /^limit: /);
  assert.equal(badLimit.body.NeutronError.type, 'InvalidArgument');
  const badMarker = await alice.expect(400, 'GET', `/network/v2.0/networks?marker=${env.offering}`);
  assert.match(badMarker.body.NeutronError.message, /^marker: /);
});

test('filters: name, router:external, device_id, security_group_id', async () => {
  const net = (await alice.expect(201, 'POST', '/network/v2.0/networks', { network: { name: 'filtered' } }))
    .body.network;
  await alice.expect(201, 'POST', '/network/v2.0/subnets', {
    subnet: { name: 'filtered-sub', network_id: net.id, ip_version: 4, cidr: '192.168.90.0/24' },
  });
  assert.deepEqual(
    (await alice.get('/network/v2.0/networks?name=filtered')).body.networks.map((n: { id: string }) => n.id),
    [net.id],
  );
  assert.equal(await count(alice, '/network/v2.0/networks?name=nothing-such', 'networks'), 0);
  // a filter the façade does not apply is refused (it would answer more than was asked)
  const unknownFilter = await alice.expect(400, 'GET', '/network/v2.0/networks?colour=red&sort_key=name');
  assert.match(unknownFilter.body.NeutronError.message, /colour: .*sort_key: /);
  const picked = (await alice.get('/network/v2.0/networks?name=filtered&fields=id&fields=name')).body
    .networks;
  assert.deepEqual(picked, [{ id: net.id, name: 'filtered' }]);
  const internal = (await alice.get('/network/v2.0/networks?router:external=False')).body.networks;
  assert.ok(internal.every((n: Record<string, unknown>) => n['router:external'] === false));
  assert.ok(internal.some((n: { id: string }) => n.id === net.id));
  assert.equal(
    (
      await alice.expect(400, 'GET', '/network/v2.0/networks?shared=perhaps')
    ).body.NeutronError.message.startsWith('shared:'),
    true,
  );
  const subs = (await alice.get(`/network/v2.0/subnets?network_id=${net.id}`)).body.subnets;
  assert.deepEqual(
    subs.map((s: { name: string }) => s.name),
    ['filtered-sub'],
  );
  assert.equal(await count(alice, '/network/v2.0/subnets?network_id=not-a-uuid', 'subnets'), 0);

  const vm = await vmOn(t, env, aliceApi, [net.id]);
  const ports = (await alice.get(`/network/v2.0/ports?device_id=${vm.vm}`)).body.ports;
  assert.deepEqual(
    ports.map((p: { id: string }) => p.id),
    [vm.nics[0]!.uuid],
  );
  assert.equal(await count(alice, `/network/v2.0/ports?network_id=${env.publicL3}`, 'ports'), 0);
  assert.equal(await count(alice, `/network/v2.0/ports?fixed_ips=ip_address=${vm.nics[0]!.ip}`, 'ports'), 1);

  const sg = (
    await alice.expect(201, 'POST', '/network/v2.0/security-groups', { security_group: { name: 'filt-sg' } })
  ).body.security_group;
  await alice.expect(201, 'POST', '/network/v2.0/security-group-rules', {
    security_group_rule: {
      security_group_id: sg.id,
      direction: 'egress',
      protocol: 'udp',
      port_range_min: 53,
    },
  });
  const rules = (await alice.get(`/network/v2.0/security-group-rules?security_group_id=${sg.id}`)).body
    .security_group_rules;
  assert.equal(rules.length, 1);
  assert.equal(rules[0].port_range_max, 53, 'one port when only the first is given');
  assert.equal(rules[0].ethertype, 'IPv4');
});

test('errors: NeutronError shape, the bad field named, nothing changed', async () => {
  const before = await count(alice, '/network/v2.0/networks', 'networks');
  const noToken = await new OsClient(t.url, undefined).call('GET', '/network/v2.0/networks');
  assert.equal(noToken.status, 401);
  assert.equal(typeof noToken.body.NeutronError.message, 'string');
  const badToken = await new OsClient(t.url, 'not-a-token').call('GET', '/network/v2.0/networks');
  assert.equal(badToken.status, 401);

  const missing = await alice.expect(404, 'GET', `/network/v2.0/networks/${env.offering}`);
  assert.deepEqual(Object.keys(missing.body.NeutronError).sort(), ['detail', 'message', 'type']);
  assert.equal(missing.body.NeutronError.type, 'NetworkNotFound');
  assert.equal(
    (await alice.expect(404, 'GET', '/network/v2.0/no-such-things')).body.NeutronError.type,
    'ResourceNotFound',
  );

  const badMtu = await alice.expect(400, 'POST', '/network/v2.0/networks', {
    network: { name: 'bad', mtu: 'big' },
  });
  assert.match(badMtu.body.NeutronError.message, /mtu/);
  const unknown = await alice.expect(400, 'POST', '/network/v2.0/networks', {
    network: { name: 'bad', colour: 'red' },
  });
  assert.match(unknown.body.NeutronError.message, /colour/);
  const wrongSegment = await alice.expect(400, 'POST', '/network/v2.0/networks', {
    network: { name: 'bad', 'provider:network_type': 'vxlan' },
  });
  assert.match(wrongSegment.body.NeutronError.message, /provider:network_type: /);
  const noL2 = await alice.expect(400, 'POST', '/network/v2.0/networks', {
    network: { name: 'bad', 'provider:physical_network': 'physnet9' },
  });
  assert.match(noL2.body.NeutronError.message, /provider:physical_network: no L2 network/);
  const share = await alice.call('POST', '/network/v2.0/networks', {
    network: { name: 'bad', shared: true },
  });
  assert.equal(share.status, 403, JSON.stringify(share.body));
  assert.equal(await count(alice, '/network/v2.0/networks', 'networks'), before, 'no network was made');

  const net = (await alice.expect(201, 'POST', '/network/v2.0/networks', { network: { name: 'errs' } })).body
    .network;
  const badCidr = await alice.expect(400, 'POST', '/network/v2.0/subnets', {
    subnet: { network_id: net.id, ip_version: 4, cidr: '10.1.2.0/33' },
  });
  assert.match(badCidr.body.NeutronError.message, /^cidr: /);
  const v6 = await alice.expect(400, 'POST', '/network/v2.0/subnets', {
    subnet: { network_id: net.id, ip_version: 6, cidr: 'fd00::/64' },
  });
  assert.match(v6.body.NeutronError.message, /^ip_version: /);
  const twoPools = await alice.expect(400, 'POST', '/network/v2.0/subnets', {
    subnet: {
      network_id: net.id,
      ip_version: 4,
      cidr: '10.1.2.0/24',
      allocation_pools: [
        { start: '10.1.2.10', end: '10.1.2.20' },
        { start: '10.1.2.30', end: '10.1.2.40' },
      ],
    },
  });
  assert.match(twoPools.body.NeutronError.message, /allocation_pools/);
  assert.deepEqual((await alice.get(`/network/v2.0/networks/${net.id}`)).body.network.subnets, []);

  const sg = (
    await alice.expect(201, 'POST', '/network/v2.0/security-groups', { security_group: { name: 'errs-sg' } })
  ).body.security_group;
  const gre = await alice.expect(400, 'POST', '/network/v2.0/security-group-rules', {
    security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'gre' },
  });
  assert.match(gre.body.NeutronError.message, /protocol: 'gre'/);
  const icmpPorts = await alice.expect(400, 'POST', '/network/v2.0/security-group-rules', {
    security_group_rule: {
      security_group_id: sg.id,
      direction: 'ingress',
      protocol: 'icmp',
      port_range_min: 8,
    },
  });
  assert.match(icmpPorts.body.NeutronError.message, /port_range_min: /);
  const rule = {
    security_group_id: sg.id,
    direction: 'ingress',
    protocol: 'tcp',
    port_range_min: 80,
    port_range_max: 80,
  };
  await alice.expect(201, 'POST', '/network/v2.0/security-group-rules', { security_group_rule: rule });
  const twice = await alice.expect(409, 'POST', '/network/v2.0/security-group-rules', {
    security_group_rule: rule,
  });
  assert.equal(twice.body.NeutronError.type, 'SecurityGroupRuleExists');
  const dup = await alice.expect(409, 'POST', '/network/v2.0/security-groups', {
    security_group: { name: 'errs-sg' },
  });
  assert.equal(dup.body.NeutronError.type, 'SecurityGroupNameTaken');
  const noPort = await alice.expect(400, 'POST', '/network/v2.0/ports', { port: { network_id: net.id } });
  assert.match(noPort.body.NeutronError.message, /^device_id: /);
  const notExternal = await alice.expect(400, 'POST', '/network/v2.0/floatingips', {
    floatingip: { floating_network_id: net.id },
  });
  assert.match(notExternal.body.NeutronError.message, /floating_network_id: .*not external/);
  assert.equal(await count(alice, '/network/v2.0/floatingips', 'floatingips'), 0);
});

test("tenants: one project neither sees nor changes another's resources", async () => {
  const net = (await alice.expect(201, 'POST', '/network/v2.0/networks', { network: { name: 'private' } }))
    .body.network;
  const sub = (
    await alice.expect(201, 'POST', '/network/v2.0/subnets', {
      subnet: { network_id: net.id, ip_version: 4, cidr: '192.168.91.0/24' },
    })
  ).body.subnet;
  const sg = (
    await alice.expect(201, 'POST', '/network/v2.0/security-groups', { security_group: { name: 'mine' } })
  ).body.security_group;
  const router = (await alice.expect(201, 'POST', '/network/v2.0/routers', { router: { name: 'mine' } })).body
    .router;
  const fip = (
    await alice.expect(201, 'POST', '/network/v2.0/floatingips', {
      floatingip: { floating_network_id: env.publicL3 },
    })
  ).body.floatingip;

  for (const [path, key] of [
    ['networks', 'networks'],
    ['subnets', 'subnets'],
    ['security-groups', 'security_groups'],
    ['routers', 'routers'],
    ['floatingips', 'floatingips'],
  ] as const) {
    const seen = (await bob.get(`/network/v2.0/${path}`)).body[key].map((x: { id: string }) => x.id);
    for (const id of [net.id, sub.id, sg.id, router.id, fip.id])
      assert.ok(!seen.includes(id), `${path} shows ${id} to bob`);
  }
  await bob.expect(404, 'GET', `/network/v2.0/networks/${net.id}`);
  await bob.expect(404, 'GET', `/network/v2.0/subnets/${sub.id}`);
  await bob.expect(404, 'DELETE', `/network/v2.0/security-groups/${sg.id}`);
  await bob.expect(404, 'PUT', `/network/v2.0/routers/${router.id}`, { router: { name: 'taken' } });
  await bob.expect(404, 'DELETE', `/network/v2.0/floatingips/${fip.id}`);
  // his own router cannot take her subnet; a rule cannot go into her group
  const bobRouter = (await bob.expect(201, 'POST', '/network/v2.0/routers', { router: { name: 'his' } })).body
    .router;
  const taken = await bob.expect(400, 'PUT', `/network/v2.0/routers/${bobRouter.id}/add_router_interface`, {
    subnet_id: sub.id,
  });
  assert.match(taken.body.NeutronError.message, /^subnet_id: no subnet/);
  const rule = await bob.expect(400, 'POST', '/network/v2.0/security-group-rules', {
    security_group_rule: { security_group_id: sg.id, direction: 'ingress' },
  });
  assert.match(rule.body.NeutronError.message, /security_group_id: /);
  // everything of hers is as it was
  assert.equal((await alice.get(`/network/v2.0/routers/${router.id}`)).body.router.name, 'mine');
  assert.equal((await alice.get(`/network/v2.0/floatingips/${fip.id}`)).body.floatingip.id, fip.id);
  // quotas: a project reads its own only; network resources are not limited
  const quota = (await alice.get(`/network/v2.0/quotas/${net.project_id}/details`)).body.quota;
  assert.equal(quota.floatingip.limit, -1);
  assert.ok(quota.floatingip.used >= 1);
  await bob.expect(403, 'GET', `/network/v2.0/quotas/${net.project_id}`);
  const ext = (await alice.get('/network/v2.0/extensions')).body.extensions.map(
    (e: { alias: string }) => e.alias,
  );
  for (const alias of ['external-net', 'router', 'security-group', 'quotas'])
    assert.ok(ext.includes(alias), alias);
});

test('which L2 a network is made on: the only one, the one named, or the one the admin tagged', async () => {
  const second = (
    await t.admin.job('POST', '/v1/l2-networks', {
      name: 'osl-second',
      zoneUuid: env.zone,
      type: 'vlan',
      physicalInterface: 'eth9',
      vlan: 42,
    })
  ).resourceUuid;
  const ambiguous = await alice.expect(400, 'POST', '/network/v2.0/networks', { network: { name: 'where' } });
  assert.match(
    ambiguous.body.NeutronError.message,
    /^provider:physical_network: name the L2 network .*osl-second/,
  );
  const named = (
    await alice.expect(201, 'POST', '/network/v2.0/networks', {
      network: { name: 'on-vlan', 'provider:physical_network': 'osl-second', 'provider:segmentation_id': 42 },
    })
  ).body.network;
  assert.equal(named['provider:network_type'], 'vlan');
  assert.equal(named['provider:segmentation_id'], 42);
  assert.equal((await aliceApi.get(`/v1/l3-networks/${named.id}`)).body.l2NetworkUuid, second);
  const tagged = await t.admin.job('POST', `/v1/l2-networks/${env.l2}/tags`, {
    key: 'openstack',
    value: 'tenant-networks',
  });
  assert.equal(tagged.state, 'Succeeded', JSON.stringify(tagged));
  const onTagged = (
    await alice.expect(201, 'POST', '/network/v2.0/networks', { network: { name: 'on-tagged' } })
  ).body.network;
  assert.equal((await aliceApi.get(`/v1/l3-networks/${onTagged.id}`)).body.l2NetworkUuid, env.l2);
});
