import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildInfra, startTestNode, type TestNode } from '../support/node.js';

describe('deleting infrastructure that storage still uses is refused clearly', () => {
  let t: TestNode;
  let infra: { zone: string; cluster: string; hosts: string[] };
  let ps: string;
  let bs: string;
  before(async () => {
    t = await startTestNode();
    infra = await buildInfra(t.admin, 1, 'del');
    ps = (
      await t.admin.job('POST', '/v1/primary-storages', {
        name: 'del-ps',
        zoneUuid: infra.zone,
        type: 'nfs',
        url: 'nfs://x/y',
        capacity: 1024 ** 4,
      })
    ).resourceUuid;
    assert.equal(
      (
        await t.admin.job('POST', `/v1/primary-storages/${ps}/actions/attach-cluster`, {
          clusterUuid: infra.cluster,
        })
      ).state,
      'Succeeded',
    );
    bs = (
      await t.admin.job('POST', '/v1/backup-storages', {
        name: 'del-bs',
        type: 'simulator',
        url: 'sim://del',
      })
    ).resourceUuid;
    assert.equal(
      (await t.admin.job('POST', `/v1/backup-storages/${bs}/actions/attach-zone`, { zoneUuid: infra.zone }))
        .state,
      'Succeeded',
    );
  });
  after(() => t.stop());

  test('a cluster with an attached primary storage', async () => {
    await t.admin.job('DELETE', `/v1/hosts/${infra.hosts[0]}`);
    const res = await t.admin.delete(`/v1/clusters/${infra.cluster}`);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'CLUSTER_HAS_PRIMARY_STORAGES');
    assert.match(res.body.error.message, /detach them first/);
  });

  test('a zone with primary storage and attached backup storage', async () => {
    await t.admin.job('POST', `/v1/primary-storages/${ps}/actions/detach-cluster`, {
      clusterUuid: infra.cluster,
    });
    assert.equal((await t.admin.job('DELETE', `/v1/clusters/${infra.cluster}`)).state, 'Succeeded');
    const withPs = await t.admin.delete(`/v1/zones/${infra.zone}`);
    assert.equal(withPs.status, 409);
    assert.equal(withPs.body.error.code, 'ZONE_HAS_PRIMARY_STORAGES');
    assert.equal((await t.admin.job('DELETE', `/v1/primary-storages/${ps}`)).state, 'Succeeded');
    const withBs = await t.admin.delete(`/v1/zones/${infra.zone}`);
    assert.equal(withBs.status, 409);
    assert.equal(withBs.body.error.code, 'ZONE_HAS_BACKUP_STORAGES');
    await t.admin.job('POST', `/v1/backup-storages/${bs}/actions/detach-zone`, { zoneUuid: infra.zone });
    assert.equal((await t.admin.job('DELETE', `/v1/zones/${infra.zone}`)).state, 'Succeeded');
  });
});
