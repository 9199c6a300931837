/**
 * The config drive a VM gets when its spec carries user-data or a hostname: a small FAT image
 * labelled `config-2` holding `openstack/latest/meta_data.json` and `openstack/latest/user_data`,
 * the layout OpenStack guests (cloud-init, our test guest) look for. Made with mkfs.vfat and
 * mtools on an image file (no mount, so no privileges beyond writing the file); rebuilt on every
 * start so it always matches the spec. Needs apt packages dosfstools and mtools.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { VmSpec } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';

const run = promisify(execFile);

export function wantsConfigDrive(vm: VmSpec): boolean {
  return vm.userData !== undefined || vm.hostname !== undefined;
}

export function metaData(vm: VmSpec): Record<string, unknown> {
  const hostname = vm.hostname ?? vm.name;
  // cloud-init's instance id is `uuid`: a handed-out pool VM's changes (VmSpec.instanceId)
  const uuid = vm.instanceId ?? vm.uuid;
  return { uuid, name: vm.name, hostname, launch_index: 0, availability_zone: 'nimbus', meta: {} };
}

export async function makeConfigDrive(vm: VmSpec, image: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'nimbus-cfgdrive-'));
  try {
    await writeFile(join(work, 'meta_data.json'), JSON.stringify(metaData(vm)));
    const files = [join(work, 'meta_data.json')];
    if (vm.userData !== undefined) {
      await writeFile(join(work, 'user_data'), vm.userData);
      files.push(join(work, 'user_data'));
    }
    const userBytes = Buffer.byteLength(vm.userData ?? '');
    const kib = Math.max(2048, Math.ceil((userBytes * 1.2) / 1024) + 1024);
    await rm(image, { force: true });
    const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
    await run('mkfs.vfat', ['-n', 'config-2', '-C', image, String(kib)], { env });
    await run('mmd', ['-i', image, '::openstack', '::openstack/latest'], { env });
    await run('mcopy', ['-i', image, ...files, '::openstack/latest/'], { env });
  } catch (err) {
    throw new CloudError('Internal', 'AGENT_CONFIG_DRIVE_FAILED', `config drive: ${(err as Error).message}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
