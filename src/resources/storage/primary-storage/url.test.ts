import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloudError } from '../../../kernel/errors.js';
import { checkPrimaryStorageUrl, primaryStorageUrlProblem } from './url.js';

test('nfs urls: nfs://server/export path', () => {
  assert.equal(primaryStorageUrlProblem('nfs', 'nfs://10.0.0.5/export'), undefined);
  assert.equal(primaryStorageUrlProblem('nfs', 'nfs://nas.example/srv/nimbus/ps-1'), undefined);
  for (const bad of ['/export', 'nfs://10.0.0.5', 'nfs://10.0.0.5/', 'nfs:///export', 'http://x/y', 'nfs']) {
    assert.match(primaryStorageUrlProblem('nfs', bad) ?? '', /nfs:\/\/<server>\/<export path>/, bad);
  }
});

test('ceph urls: rbd:pool with optional conf and id', () => {
  for (const good of [
    'rbd:rbd',
    'rbd:volumes:conf=/etc/ceph/ceph.conf',
    'rbd:vms:conf=/etc/ceph/c.conf:id=nimbus',
  ]) {
    assert.equal(primaryStorageUrlProblem('ceph', good), undefined, good);
  }
  for (const bad of ['ceph://pool', 'rbd:', 'rbd:pool/image', 'rbd:pool:keyring=/k', 'rbd:pool:conf=']) {
    assert.match(primaryStorageUrlProblem('ceph', bad) ?? '', /rbd:<pool>/, bad);
  }
});

test('other types are not checked here; a bad url is refused naming the field', () => {
  assert.equal(primaryStorageUrlProblem('local', '/var/lib/nimbus'), undefined);
  assert.equal(primaryStorageUrlProblem('shared-mount', 'file:///x'), undefined);
  assert.throws(
    () => checkPrimaryStorageUrl('ceph', 'ceph://pool'),
    (e: unknown) =>
      e instanceof CloudError &&
      e.code === 'PRIMARY_STORAGE_URL_INVALID' &&
      e.reason === 'Invalid' &&
      JSON.stringify(e.details).includes('"url"'),
  );
});
