import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloudError } from '../../../kernel/errors.js';
import {
  deviceName,
  lowestFreeDevice,
  MAX_DEVICE_ID,
  presentVolume,
  volumeFormatOn,
  volumeQuota,
} from './model.js';

describe('device names', () => {
  test('Linux virtio names: vda … vdz, then vdaa, vdab …', () => {
    assert.equal(deviceName(0), 'vda');
    assert.equal(deviceName(1), 'vdb');
    assert.equal(deviceName(25), 'vdz');
    assert.equal(deviceName(26), 'vdaa');
    assert.equal(deviceName(27), 'vdab');
    assert.equal(deviceName(51), 'vdaz');
    assert.equal(deviceName(52), 'vdba');
    assert.equal(deviceName(701), 'vdzz');
    assert.equal(deviceName(702), 'vdaaa');
  });

  test('no name without a device', () => {
    assert.equal(deviceName(null), null);
    assert.equal(deviceName(-1), null);
    assert.equal(deviceName(1.5), null);
    assert.equal(presentVolume({ deviceId: null }).deviceName, null);
    assert.equal(presentVolume({ deviceId: 2 }).deviceName, 'vdc');
  });
});

describe('device ids', () => {
  test('the lowest free id ≥ 1 (0 is the root volume’s)', () => {
    assert.equal(lowestFreeDevice([]), 1);
    assert.equal(lowestFreeDevice([0]), 1);
    assert.equal(lowestFreeDevice([0, 1, 2, 4]), 3);
    assert.equal(lowestFreeDevice([null, 0, 2]), 1);
  });

  test('null when every id is taken', () => {
    const all = Array.from({ length: MAX_DEVICE_ID + 1 }, (_, i) => i);
    assert.equal(lowestFreeDevice(all), null);
    assert.equal(lowestFreeDevice(all.slice(0, -1)), MAX_DEVICE_ID);
  });
});

describe('quota of a volume', () => {
  test('data volumes count in number and capacity, root volumes in capacity only', () => {
    assert.deepEqual(volumeQuota({ type: 'Data', size: 10 }), {
      'volume.data.num': 1,
      'volume.capacity': 10,
    });
    assert.deepEqual(volumeQuota({ type: 'Root', size: 10 }), { 'volume.capacity': 10 });
  });
});

describe('volume format on a storage type', () => {
  test('qcow2 by default, the asked format elsewhere than ceph', () => {
    for (const type of ['local', 'nfs', 'shared-mount']) {
      assert.equal(volumeFormatOn(type, undefined), 'qcow2');
      assert.equal(volumeFormatOn(type, 'raw'), 'raw');
      assert.equal(volumeFormatOn(type, 'qcow2'), 'qcow2');
    }
  });

  test('ceph: raw by default and when asked; qcow2 refused naming the field', () => {
    assert.equal(volumeFormatOn('ceph', undefined), 'raw');
    assert.equal(volumeFormatOn('ceph', 'raw'), 'raw');
    assert.throws(
      () => volumeFormatOn('ceph', 'qcow2'),
      (e: unknown) =>
        e instanceof CloudError &&
        e.code === 'VOLUME_FORMAT_UNSUPPORTED' &&
        e.reason === 'Invalid' &&
        /format/.test(e.message),
    );
  });
});
