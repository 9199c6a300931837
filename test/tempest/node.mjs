// A Nimbus test node for Tempest (test/tempest/run.sh): the OpenStack fixtures' environment plus a
// second tenant (Tempest's alternate credentials); prints one line of JSON, then serves until killed.
const { startOpenStackNode } = await import('../../dist/test/scenario/openstack-fixtures.js');
const n = await startOpenStackNode('tempest');
const alt = await n.t.admin.job('POST', '/v1/accounts', { name: 'demo2', password: 'demo2-password' });
if (alt.state !== 'Succeeded') throw new Error(`demo2: ${JSON.stringify(alt)}`);
console.log(JSON.stringify({ url: n.t.url, image: n.env.image, small: n.env.small, medium: n.env.medium }));
process.on('SIGTERM', async () => {
  await n.t.stop();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
