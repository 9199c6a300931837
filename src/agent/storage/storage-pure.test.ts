// Pure parts of the storage agent: path layout, qemu-img argument lists and output parsing, URL
// and name checks, the backup storage's Range parsing. No tools run here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloudError } from '../../kernel/errors.js';
import { parseRange } from '../backup-storage/routes.js';
import { checkName } from './backend.js';
import { checkSha256Field, parseImageSource } from './fetch-image.js';
import { isPartOf, layoutOf, parseSnapshotRecord, partPath } from './layout.js';
import { parseNfsUrl } from './nfs-client.js';
import {
  convertArgs,
  createArgs,
  infoArgs,
  isLockError,
  parseInfo,
  parseSnapshotList,
  resizeArgs,
  snapshotArgs,
} from './qemu-img.js';
import { clusterArgs, parseRbdUrl, rbdPath } from './rbd-backend.js';
import { imageUrl } from './upload.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof CloudError ? e.code : `not a CloudError: ${String(e)}`;
  }
  return 'no error';
};

test('layout: every path derives from the root and a uuid (trailing slashes ignored)', () => {
  const l = layoutOf('/var/lib/nimbus/local/');
  assert.equal(l.root, '/var/lib/nimbus/local');
  assert.equal(l.cache('img1'), '/var/lib/nimbus/local/imagecache/img1.qcow2');
  assert.equal(l.volume('v1', 'qcow2'), '/var/lib/nimbus/local/volumes/v1.qcow2');
  assert.equal(l.volume('v1', 'raw'), '/var/lib/nimbus/local/volumes/v1.raw');
  assert.equal(l.snapshotRecord('s1'), '/var/lib/nimbus/local/snapshots/s1.json');
  assert.equal(layoutOf('nfs://10.0.0.5/vol').cache('i'), 'nfs://10.0.0.5/vol/imagecache/i.qcow2');
});

test('layout: part names sit beside the final name, are recognised as its leftovers and differ each time', () => {
  const final = '/s/imagecache/img1.qcow2';
  const a = partPath(final);
  const b = partPath(final);
  assert.notEqual(a, b);
  assert.match(a, /^\/s\/imagecache\/\.img1\.qcow2\.[0-9a-f]{8}\.part$/);
  assert.ok(isPartOf(final, a.slice('/s/imagecache/'.length)));
  assert.ok(isPartOf(final, `${partPath(final, '.qcow2').slice('/s/imagecache/'.length)}`));
  assert.ok(!isPartOf(final, 'img1.qcow2'));
  assert.ok(!isPartOf(final, '.img10.qcow2.abcd0123.part'), 'another image’s part is not ours');
});

test('snapshot records: parsed, and a record without its fields is refused', () => {
  assert.deepEqual(parseSnapshotRecord('{"volumeUuid":"v","volumePath":"/p/v.qcow2"}'), {
    volumeUuid: 'v',
    volumePath: '/p/v.qcow2',
  });
  assert.throws(() => parseSnapshotRecord('{"volumeUuid":"v"}'));
});

test('qemu-img arguments', () => {
  assert.deepEqual(createArgs('/v.qcow2', 'qcow2', 1073741824), [
    'create',
    '-q',
    '-f',
    'qcow2',
    '/v.qcow2',
    '1073741824',
  ]);
  assert.deepEqual(createArgs('/v.qcow2', 'qcow2', 2048, '/c/i.qcow2'), [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    '/c/i.qcow2',
    '-F',
    'qcow2',
    '/v.qcow2',
    '2048',
  ]);
  assert.deepEqual(infoArgs('/v', { format: 'qcow2', chain: true }), [
    'info',
    '--output=json',
    '-U',
    '-f',
    'qcow2',
    '--backing-chain',
    '/v',
  ]);
  assert.deepEqual(resizeArgs('/v', 'raw', 10), ['resize', '-q', '-f', 'raw', '/v', '10']);
  assert.deepEqual(snapshotArgs('create', '/v', 's'), ['snapshot', '-q', '-c', 's', '/v']);
  assert.deepEqual(snapshotArgs('apply', '/v', 's'), ['snapshot', '-q', '-a', 's', '/v']);
  assert.deepEqual(snapshotArgs('delete', '/v', 's'), ['snapshot', '-q', '-d', 's', '/v']);
  assert.deepEqual(snapshotArgs('list', '/v'), ['snapshot', '-U', '-l', '/v']);
  assert.throws(() => snapshotArgs('create', '/v'));
  assert.deepEqual(convertArgs('/v', 'qcow2', '/o'), ['convert', '-O', 'qcow2', '-f', 'qcow2', '/v', '/o']);
  assert.deepEqual(convertArgs('/v', 'qcow2', '/o', 's1'), [
    'convert',
    '-O',
    'qcow2',
    '-f',
    'qcow2',
    '-U',
    '-l',
    'snapshot.name=s1',
    '/v',
    '/o',
  ]);
});

test('qemu-img output: info (single and chain) and snapshot lists', () => {
  const one = parseInfo('{"virtual-size":1048576,"filename":"/v","format":"qcow2","actual-size":200704}');
  assert.deepEqual(one, {
    format: 'qcow2',
    virtualSize: 1048576,
    actualSize: 200704,
    backingFilename: undefined,
  });
  const chain = parseInfo(
    '[{"virtual-size":2097152,"format":"qcow2","backing-filename":"/c/i.qcow2","actual-size":4096},{"virtual-size":1048576,"format":"qcow2"}]',
  );
  assert.equal(chain.backingFilename, '/c/i.qcow2');
  assert.equal(chain.virtualSize, 2097152);
  const list = [
    'Snapshot list:',
    'ID        TAG                                      VM SIZE                DATE     VM CLOCK     ICOUNT',
    '1         9f1c2d3e-aaaa-bbbb-cccc-000000000001         0 B 2026-12-07 05:00:00 00:00:00.000          0',
    '2         second                                   0 B 2026-12-07 05:00:01 00:00:00.000          0',
    '',
  ].join('\n');
  assert.deepEqual(parseSnapshotList(list), ['9f1c2d3e-aaaa-bbbb-cccc-000000000001', 'second']);
  assert.deepEqual(parseSnapshotList(''), []);
});

test('lock errors are told apart from other qemu-img failures', () => {
  assert.ok(isLockError('qemu-img: Failed to get "write" lock\nIs another process using the image [/v]?'));
  assert.ok(!isLockError("qemu-img: Could not open '/v': No such file or directory"));
});

test('names, digests, image sources and backup storage URLs are checked', () => {
  assert.equal(
    checkName('0b5e1a2c-1111-2222-3333-444455556666', 'volumeUuid'),
    '0b5e1a2c-1111-2222-3333-444455556666',
  );
  for (const bad of ['', '../etc', 'a/b', '.hidden', 'x'.repeat(200)]) {
    assert.equal(
      codeOf(() => checkName(bad, 'volumeUuid')),
      'STORAGE_NAME_INVALID',
      bad,
    );
  }
  assert.equal(checkSha256Field('AB'.repeat(32), 'sha256'), 'ab'.repeat(32));
  assert.equal(checkSha256Field(undefined, 'sha256'), undefined);
  assert.equal(
    codeOf(() => checkSha256Field('abc', 'sha256')),
    'IMAGE_CHECKSUM_INVALID',
  );
  assert.deepEqual(parseImageSource('/srv/i.qcow2'), { kind: 'file', path: '/srv/i.qcow2' });
  assert.deepEqual(parseImageSource('file:///srv/i%20x.qcow2'), { kind: 'file', path: '/srv/i x.qcow2' });
  assert.deepEqual(parseImageSource('http://bs:7070/v1/images/i'), {
    kind: 'http',
    url: 'http://bs:7070/v1/images/i',
  });
  assert.equal(
    codeOf(() => parseImageSource('ftp://x/i')),
    'IMAGE_URL_INVALID',
  );
  assert.equal(
    codeOf(() => parseImageSource('relative/path')),
    'IMAGE_URL_INVALID',
  );
  assert.equal(imageUrl('http://10.0.0.9:7070', 'i1').href, 'http://10.0.0.9:7070/v1/images/i1');
  assert.equal(imageUrl('https://bs.example/agent/', 'i1').href, 'https://bs.example/agent/v1/images/i1');
  assert.equal(
    codeOf(() => imageUrl('sim://bs-1', 'i1')),
    'BACKUP_STORAGE_URL_INVALID',
  );
});

test('Range: one range honoured and clipped, suffix ranges, unsatisfiable and ignored forms', () => {
  assert.equal(parseRange(undefined, 100), undefined);
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-500', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-2', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined, 'several ranges: the whole file');
});

test('ceph: storage URLs in QEMU syntax, image paths and cluster arguments', () => {
  const p = parseRbdUrl('rbd:volumes:conf=/etc/ceph/ceph.conf:id=nimbus');
  assert.deepEqual(p, { pool: 'volumes', conf: '/etc/ceph/ceph.conf', id: 'nimbus' });
  assert.deepEqual(parseRbdUrl('rbd:rbd'), { pool: 'rbd' });
  assert.equal(rbdPath(p, 'vol-1'), 'rbd:volumes/vol-1:conf=/etc/ceph/ceph.conf:id=nimbus');
  assert.equal(rbdPath(p, 'img-1', 'base'), 'rbd:volumes/img-1@base:conf=/etc/ceph/ceph.conf:id=nimbus');
  assert.deepEqual(clusterArgs(p), ['--conf', '/etc/ceph/ceph.conf', '--id', 'nimbus']);
  assert.deepEqual(clusterArgs(parseRbdUrl('rbd:rbd')), []);
  for (const bad of ['ceph://rbd', 'rbd:', 'rbd:pool/image', '/var/lib/x']) {
    assert.equal(
      codeOf(() => parseRbdUrl(bad)),
      'STORAGE_URL_INVALID',
      bad,
    );
  }
});

test('nfs: URLs name the server and the exported path', () => {
  assert.deepEqual(parseNfsUrl('nfs://10.0.0.5/vol/'), { host: '10.0.0.5', exportPath: '/vol' });
  assert.deepEqual(parseNfsUrl('nfs://fs1/srv/nfs/export'), { host: 'fs1', exportPath: '/srv/nfs/export' });
  for (const bad of ['nfs://', 'nfs:///x', 'http://h/x', '/local']) {
    assert.equal(
      codeOf(() => parseNfsUrl(bad)),
      'STORAGE_URL_INVALID',
      bad,
    );
  }
});
