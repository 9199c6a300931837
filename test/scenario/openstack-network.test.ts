/**
 * Neutron v2.0 through the façade (docs/openstack-network-volume.md), over HTTP as the
 * openstack CLI calls it: the scenario (network, subnet, router with external gateway
 * and interface, security group with a rule, floating IP create and add), each step checked
 * against the Nimbus resource it made — one model, whichever API.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';
import { OsClient } from './openstack-fixtures.js';
import { buildRouterEnv, type RouterEnv, tenant, vmOn } from './router-fixtures.js';

let t: TestNode;
let env: RouterEnv;
let alice: OsClient;
let aliceUuid: string;
let aliceApi: Awaited<ReturnType<typeof tenant>>['api'];

before(async () => {
  t = await startTestNode();
  env = await buildRouterEnv(t, { prefix: 'osn' });
  const a = await tenant(t, 'osn-alice');
  aliceApi = a.api;
  aliceUuid = a.uuid;
  alice = OsClient.of(a.api);
});
after(() => t.stop());

test('the CLI scenario: network, subnet, router with gateway and interface, security group, floating IP', async () => {
  // openstack network show public: GET by name-or-id, then the name filter
  assert.equal((await alice.call('GET', '/network/v2.0/networks/osn-public')).status, 404);
  const found = await alice.get('/network/v2.0/networks?name=osn-public');
  assert.equal(found.body.networks.length, 1);
  const pub = found.body.networks[0];
  assert.equal(pub.id, env.publicL3);
  assert.equal(pub['router:external'], true);
  assert.equal(pub.shared, true);
  assert.equal(pub.subnets.length, 1, 'a shared network shows its subnets to every account');
  const pubSubnets = (await alice.get(`/network/v2.0/subnets?network_id=${env.publicL3}`)).body.subnets;
  assert.deepEqual(
    pubSubnets.map((x: { id: string }) => x.id),
    pub.subnets,
    'and lists them',
  );
  const externals = await alice.get('/network/v2.0/networks?router:external=True');
  assert.deepEqual(
    externals.body.networks.map((n: { id: string }) => n.id),
    [env.publicL3],
  );

  // openstack network create net1
  const net = (
    await alice.expect(201, 'POST', '/network/v2.0/networks', {
      network: { name: 'net1', admin_state_up: true },
    })
  ).body.network;
  assert.equal(net.name, 'net1');
  assert.equal(net.status, 'ACTIVE');
  assert.equal(net.project_id, aliceUuid);
  assert.equal(net['router:external'], false);
  assert.equal(net['provider:network_type'], 'flat');
  assert.deepEqual(net.subnets, []);
  const l3 = (await aliceApi.get(`/v1/l3-networks/${net.id}`)).body;
  assert.equal(l3.l2NetworkUuid, env.l2, 'made on the only L2 network');
  assert.equal(l3.provider, 'virtual-router', 'the zone has a default router offering');
  assert.equal(l3.category, 'private');

  // openstack subnet create sub1 --network net1 --subnet-range 192.168.77.0/24 --dns-nameserver 8.8.8.8
  const sub = (
    await alice.expect(201, 'POST', '/network/v2.0/subnets', {
      subnet: {
        name: 'sub1',
        network_id: net.id,
        ip_version: 4,
        cidr: '192.168.77.0/24',
        dns_nameservers: ['8.8.8.8'],
      },
    })
  ).body.subnet;
  assert.equal(sub.cidr, '192.168.77.0/24');
  assert.equal(sub.gateway_ip, '192.168.77.1');
  assert.deepEqual(sub.allocation_pools, [{ start: '192.168.77.2', end: '192.168.77.254' }]);
  assert.deepEqual(sub.dns_nameservers, ['8.8.8.8']);
  assert.equal(sub.enable_dhcp, true);
  assert.deepEqual((await alice.get(`/network/v2.0/networks/${net.id}`)).body.network.subnets, [sub.id]);
  assert.equal((await aliceApi.get(`/v1/ip-ranges/${sub.id}`)).body.l3NetworkUuid, net.id);

  // openstack router create r1; router set --external-gateway osn-public r1; router add subnet r1 sub1
  const router = (
    await alice.expect(201, 'POST', '/network/v2.0/routers', { router: { name: 'r1', admin_state_up: true } })
  ).body.router;
  assert.equal(router.external_gateway_info, null);
  const gw = await alice.expect(200, 'PUT', `/network/v2.0/routers/${router.id}`, {
    router: { external_gateway_info: { network_id: env.publicL3 } },
  });
  assert.equal(gw.body.router.external_gateway_info.network_id, env.publicL3);
  const added = await alice.expect(200, 'PUT', `/network/v2.0/routers/${router.id}/add_router_interface`, {
    subnet_id: sub.id,
  });
  assert.equal(added.body.subnet_id, sub.id);
  assert.equal(added.body.network_id, net.id);
  // the interface is a port of the router holding the subnet's gateway (openstack router show)
  const ifacePorts = (await alice.get(`/network/v2.0/ports?device_id=${router.id}`)).body.ports;
  assert.deepEqual(
    ifacePorts.map((p: { id: string }) => p.id),
    [added.body.port_id],
  );
  assert.equal(ifacePorts[0].device_owner, 'network:router_interface');
  assert.deepEqual(ifacePorts[0].fixed_ips, [{ subnet_id: sub.id, ip_address: '192.168.77.1' }]);
  assert.equal(ifacePorts[0].status, 'DOWN', 'no virtual router yet: no VM on the network');
  const fixed = await alice.expect(409, 'DELETE', `/network/v2.0/ports/${added.body.port_id}`);
  assert.equal(fixed.body.NeutronError.type, 'PortInUse');

  // openstack security group create sg1; security group rule create --protocol tcp --dst-port 22 sg1
  const sg = (
    await alice.expect(201, 'POST', '/network/v2.0/security-groups', {
      security_group: { name: 'sg1', description: 'ssh' },
    })
  ).body.security_group;
  assert.deepEqual(sg.security_group_rules, []);
  const rule = (
    await alice.expect(201, 'POST', '/network/v2.0/security-group-rules', {
      security_group_rule: {
        security_group_id: sg.id,
        direction: 'ingress',
        ethertype: 'IPv4',
        protocol: 'tcp',
        port_range_min: 22,
        port_range_max: 22,
        remote_ip_prefix: '0.0.0.0/0',
      },
    })
  ).body.security_group_rule;
  assert.equal(rule.protocol, 'tcp');
  assert.equal(rule.port_range_min, 22);
  const native = (await aliceApi.get(`/v1/security-group-rules/${rule.id}`)).body;
  assert.equal(native.securityGroupUuid, sg.id);
  assert.equal(native.portStart, 22);
  assert.equal(
    (await alice.get(`/network/v2.0/security-groups/${sg.id}`)).body.security_group.security_group_rules
      .length,
    1,
  );

  // a server on net1 (Nova's part: made natively here), then its port
  const vm = await vmOn(t, env, aliceApi, [net.id]);
  const ports = (await alice.get(`/network/v2.0/ports?device_id=${vm.vm}`)).body.ports;
  assert.equal(ports.length, 1);
  assert.equal(ports[0].id, vm.nics[0]!.uuid);
  assert.deepEqual(ports[0].fixed_ips, [{ subnet_id: sub.id, ip_address: vm.nics[0]!.ip }]);
  assert.equal(ports[0].status, 'ACTIVE');
  assert.equal(ports[0].network_id, net.id);
  // port set --security-group sg1
  const withSg = await alice.expect(200, 'PUT', `/network/v2.0/ports/${ports[0].id}`, {
    port: { security_groups: [sg.id] },
  });
  assert.deepEqual(withSg.body.port.security_groups, [sg.id]);

  // openstack floating ip create osn-public; server add floating ip vm <ip>
  const fip = (
    await alice.expect(201, 'POST', '/network/v2.0/floatingips', {
      floatingip: { floating_network_id: env.publicL3 },
    })
  ).body.floatingip;
  assert.equal(fip.status, 'DOWN');
  assert.equal(fip.port_id, null);
  assert.equal(fip.floating_network_id, env.publicL3);
  // the CLI finds it by address (GET by id fails first), then sets its port
  assert.equal((await alice.call('GET', `/network/v2.0/floatingips/${fip.floating_ip_address}`)).status, 404);
  const byIp = await alice.get(`/network/v2.0/floatingips?floating_ip_address=${fip.floating_ip_address}`);
  assert.deepEqual(
    byIp.body.floatingips.map((f: { id: string }) => f.id),
    [fip.id],
  );
  const bound = (
    await alice.expect(200, 'PUT', `/network/v2.0/floatingips/${fip.id}`, {
      floatingip: { port_id: ports[0].id },
    })
  ).body.floatingip;
  assert.equal(bound.status, 'ACTIVE');
  assert.equal(bound.fixed_ip_address, vm.nics[0]!.ip);
  assert.equal(bound.router_id, router.id);
  const eip = (await aliceApi.get(`/v1/eips/${fip.id}`)).body;
  assert.equal(eip.vmNicUuid, ports[0].id);
  assert.equal(eip.ip, fip.floating_ip_address);
  // the first VM made the network's virtual router: the interface port is its guest NIC
  const iface = (await alice.get(`/network/v2.0/ports/${added.body.port_id}`)).body.port;
  assert.equal(iface.status, 'ACTIVE');
  assert.match(iface.mac_address, /^fa:16:3e:/);
  // the router's gateway shows the public address its virtual router really holds
  const shown = (await alice.get(`/network/v2.0/routers/${router.id}`)).body.router;
  const vr = (await t.admin.get(`/v1/virtual-routers?q=l3NetworkUuid=${net.id}`)).body.items[0];
  assert.deepEqual(
    shown.external_gateway_info.external_fixed_ips.map((f: { ip_address: string }) => f.ip_address),
    [vr.publicIp],
  );

  // while the network is on the router it stays; the subnet with a NIC on it stays
  assert.equal((await alice.call('DELETE', `/network/v2.0/networks/${net.id}`)).status, 409);
  assert.equal((await alice.call('DELETE', `/network/v2.0/routers/${router.id}`)).status, 409);

  // server remove floating ip; floating ip delete: the EIP and its VIP are gone
  const unbound = await alice.expect(200, 'PUT', `/network/v2.0/floatingips/${fip.id}`, {
    floatingip: { port_id: null },
  });
  assert.equal(unbound.body.floatingip.port_id, null);
  await alice.expect(204, 'DELETE', `/network/v2.0/floatingips/${fip.id}`);
  assert.equal((await aliceApi.get(`/v1/eips/${fip.id}`)).status, 404);
  assert.equal((await aliceApi.get(`/v1/vips?q=ip=${fip.floating_ip_address}`)).body.items.length, 0);

  // every resource then gone
  await aliceApi.job('DELETE', `/v1/vms/${vm.vm}`);
  await aliceApi.job('POST', `/v1/vms/${vm.vm}/actions/expunge`, {});
  await alice.expect(204, 'DELETE', `/network/v2.0/security-group-rules/${rule.id}`);
  await alice.expect(204, 'DELETE', `/network/v2.0/security-groups/${sg.id}`);
  // the subnet of a router interface stays (409), as in Neutron
  const onRouter = await alice.expect(409, 'DELETE', `/network/v2.0/subnets/${sub.id}`);
  assert.equal(onRouter.body.NeutronError.type, 'SubnetInUse');
  await alice.expect(200, 'PUT', `/network/v2.0/routers/${router.id}/remove_router_interface`, {
    subnet_id: sub.id,
  });
  await alice.expect(204, 'DELETE', `/network/v2.0/routers/${router.id}`);
  // Nimbus's virtual router of the network (made by the VM) goes with its last subnet
  assert.equal((await t.admin.get(`/v1/virtual-routers/${vr.uuid}`)).status, 200);
  await alice.expect(204, 'DELETE', `/network/v2.0/subnets/${sub.id}`);
  assert.equal((await t.admin.get(`/v1/virtual-routers/${vr.uuid}`)).status, 404);
  assert.equal((await t.admin.get(`/v1/vms/${vr.vmUuid}`)).status, 404, 'its appliance expunged');
  await alice.expect(204, 'DELETE', `/network/v2.0/networks/${net.id}`);
  assert.equal((await alice.call('GET', `/network/v2.0/networks/${net.id}`)).status, 404);
  assert.equal((await aliceApi.get(`/v1/l3-networks/${net.id}`)).status, 404);
});

test('an interface must go out through the router gateway; only virtual-router networks are routed', async () => {
  const flat = (
    await aliceApi.job('POST', '/v1/l3-networks', {
      name: 'osn-flat',
      l2NetworkUuid: env.l2,
      category: 'private',
      provider: 'flat',
    })
  ).resourceUuid;
  const sub = (
    await alice.expect(201, 'POST', '/network/v2.0/subnets', {
      subnet: { network_id: flat, ip_version: 4, cidr: '192.168.78.0/24' },
    })
  ).body.subnet;
  assert.match(sub.name, /^subnet-/, 'an unnamed subnet gets a name (Nimbus names are required)');
  const router = (await alice.expect(201, 'POST', '/network/v2.0/routers', { router: { name: 'r2' } })).body
    .router;
  const refused = await alice.expect(400, 'PUT', `/network/v2.0/routers/${router.id}/add_router_interface`, {
    subnet_id: sub.id,
  });
  assert.match(refused.body.NeutronError.message, /subnet_id: .*provider flat/);
  const bad = await alice.expect(400, 'PUT', `/network/v2.0/routers/${router.id}`, {
    router: { external_gateway_info: { network_id: flat } },
  });
  assert.match(bad.body.NeutronError.message, /external_gateway_info.network_id: .*not external/);
  // openstack router unset --external-gateway sends {}
  const cleared = await alice.expect(200, 'PUT', `/network/v2.0/routers/${router.id}`, {
    router: { external_gateway_info: {} },
  });
  assert.equal(cleared.body.router.external_gateway_info, null);
  await alice.expect(204, 'DELETE', `/network/v2.0/routers/${router.id}`);
  await alice.expect(204, 'DELETE', `/network/v2.0/networks/${flat}`);
  assert.equal((await aliceApi.get(`/v1/ip-ranges/${sub.id}`)).status, 404, 'its subnets went with it');
});
