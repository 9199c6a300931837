// The config drive a real agent builds for a handed-out pool VM (needs dosfstools and mtools, no
// root): the multipart user-data with the holder's login byte for byte, and meta_data.json's
// `uuid` — cloud-init's instance id — the lease's, so the guest applies the login at that boot.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeConfigDrive } from '../../src/agent/qemu/config-drive.js';
import type { VmSpec } from '../../src/contract/agent.js';
import { newId } from '../../src/kernel/ids.js';
import { handOutUserData } from '../../src/resources/self-service/lease/user-data.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKwU4hg5pkxAG7Dc1X5RRAbA7BbMsgfYfWk62YRKWgXU dev@laptop';

const tools = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.vfat && command -v mtype'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('a handed-out VM’s config drive: the login user-data as given, the lease as the instance id', {
  skip: !tools && 'no dosfstools/mtools',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-cfgdrive-test-'));
  try {
    const lease = newId();
    const userData = handOutUserData('#!/bin/sh\necho ready\n', {
      user: 'dev',
      sshKeys: [KEY],
      passwordHash: '$6$abc$def',
    });
    const vm: VmSpec = {
      uuid: newId(),
      name: 'redis-1a2b3c',
      cpu: 1,
      memory: 1024 ** 3,
      volumes: [],
      nics: [],
      userData,
      instanceId: lease,
    };
    const image = join(dir, 'config.img');
    await makeConfigDrive(vm, image);
    const read = (path: string) =>
      execFileSync('mtype', ['-i', image, `::openstack/latest/${path}`], {
        env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
      }).toString('utf8');
    const meta = JSON.parse(read('meta_data.json'));
    assert.equal(meta.uuid, lease, 'cloud-init’s instance id is the lease');
    assert.equal(meta.name, vm.name);
    assert.equal(read('user_data'), userData);
    const label = execFileSync('sh', ['-c', `file -s ${image}`]).toString();
    assert.match(label, /config-2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
