/**
 * What the storage part asks of running VMs (its LiveDiskHooks): a disk file held open by a
 * running QEMU must be snapshotted and resized through that QEMU, not with qemu-img. Each hook
 * answers false when no running VM of this host uses the path (the storage part then works on
 * the file directly).
 */
import { volumeNodeName } from './blockdev.js';
import type { Hypervisor } from './hypervisor.js';

async function holder(hv: Hypervisor, path: string): Promise<{ vmUuid: string; node: string } | undefined> {
  for (const vmUuid of await hv.known()) {
    const volume = (await hv.readSpec(vmUuid))?.volumes.find((v) => v.path === path);
    if (volume !== undefined && (await hv.pid(vmUuid)) !== undefined) {
      return { vmUuid, node: volumeNodeName(volume.uuid) };
    }
  }
  return undefined;
}

export function liveDiskHooks(hv: Hypervisor) {
  const onHolder = async (path: string, command: string, args: (node: string) => Record<string, unknown>) => {
    const h = await holder(hv, path);
    if (h === undefined) return false;
    await hv.execute(h.vmUuid, command, args(h.node));
    return true;
  };
  return {
    snapshotCreate: (path: string, name: string) =>
      onHolder(path, 'blockdev-snapshot-internal-sync', (device) => ({ device, name })),
    snapshotDelete: (path: string, name: string) =>
      onHolder(path, 'blockdev-snapshot-delete-internal-sync', (device) => ({ device, name })),
    resize: (path: string, size: number) =>
      onHolder(path, 'block_resize', (node) => ({ 'node-name': node, size })),
  };
}
