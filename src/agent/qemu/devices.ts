/**
 * Hot-plug of volumes and NICs through QMP, each idempotent both ways: attach checks what QEMU
 * already has (device ids under /machine/peripheral, named block nodes) and adds only what is
 * missing; detach removes the device (waiting for the guest to release it: DEVICE_DELETED), then
 * its backend. spec.json follows, so a VM not running gets the change at its next start.
 */
import type { NicSpec, VolumeSpec } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import {
  nicDevice,
  nicDeviceId,
  nicNetdev,
  nicNetdevId,
  volumeBlockdev,
  volumeDevice,
  volumeDeviceId,
  volumeNodeName,
} from './blockdev.js';
import type { Hypervisor } from './hypervisor.js';
import { type Qmp, QmpError } from './qmp.js';

/** How long a guest may take to release an unplugged device. */
export const UNPLUG_TIMEOUT_MS = 60_000;

async function deviceIds(qmp: Qmp): Promise<Set<string>> {
  const items = await qmp.execute<Array<{ name: string }>>('qom-list', { path: '/machine/peripheral' });
  return new Set(items.map((i) => i.name));
}

async function nodeNames(qmp: Qmp): Promise<Set<string>> {
  const nodes = await qmp.execute<Array<{ 'node-name': string }>>('query-named-block-nodes', { flat: true });
  return new Set(nodes.map((n) => n['node-name']));
}

async function unplug(qmp: Qmp, id: string): Promise<void> {
  if (!(await deviceIds(qmp)).has(id)) return;
  const deleted = qmp.waitEvent('DEVICE_DELETED', UNPLUG_TIMEOUT_MS, (e) => e.data?.device === id);
  try {
    await qmp.execute('device_del', { id });
  } catch (err) {
    deleted.catch(() => undefined);
    // a second device_del while the first is pending fails; the event still comes
    if (!(err instanceof QmpError)) throw err;
  }
  await deleted.catch(async (err) => {
    if ((await deviceIds(qmp)).has(id)) {
      throw new CloudError('Timeout', 'AGENT_UNPLUG_TIMEOUT', `the guest did not release ${id}`, {
        details: { device: id },
        retryable: true,
        cause: err,
      });
    }
  });
}

const running = async (hv: Hypervisor, uuid: string) => (await hv.pid(uuid)) !== undefined;

export function attachVolume(hv: Hypervisor, uuid: string, volume: VolumeSpec): Promise<void> {
  return hv.serial(uuid, async () => {
    const spec = await hv.specOf(uuid);
    const clash = spec.volumes.find((v) => v.deviceId === volume.deviceId && v.uuid !== volume.uuid);
    if (clash !== undefined) {
      throw new CloudError(
        'Conflict',
        'AGENT_DEVICE_ID_IN_USE',
        `deviceId ${volume.deviceId} holds volume ${clash.uuid}`,
        {
          details: { field: 'volume.deviceId', volumeUuid: clash.uuid },
        },
      );
    }
    const device = volumeDevice(volume);
    const blockdev = volumeBlockdev(volume);
    if (await running(hv, uuid)) {
      const qmp = await hv.qmp(uuid);
      if (!(await deviceIds(qmp)).has(volumeDeviceId(volume.uuid))) {
        if (!(await nodeNames(qmp)).has(volumeNodeName(volume.uuid)))
          await qmp.execute('blockdev-add', blockdev);
        await qmp.execute('device_add', device);
      }
    }
    await hv.writeSpec({ ...spec, volumes: [...spec.volumes.filter((v) => v.uuid !== volume.uuid), volume] });
  });
}

export function detachVolume(hv: Hypervisor, uuid: string, volumeUuid: string): Promise<void> {
  return hv.serial(uuid, async () => {
    const spec = await hv.specOf(uuid);
    if (await running(hv, uuid)) {
      const qmp = await hv.qmp(uuid);
      await unplug(qmp, volumeDeviceId(volumeUuid));
      if ((await nodeNames(qmp)).has(volumeNodeName(volumeUuid))) {
        await qmp.execute('blockdev-del', { 'node-name': volumeNodeName(volumeUuid) });
      }
    }
    await hv.writeSpec({ ...spec, volumes: spec.volumes.filter((v) => v.uuid !== volumeUuid) });
  });
}

export function resizeVolume(hv: Hypervisor, uuid: string, volumeUuid: string, size: number): Promise<void> {
  return hv.serial(uuid, async () => {
    const spec = await hv.specOf(uuid);
    const volume = spec.volumes.find((v) => v.uuid === volumeUuid);
    if (volume === undefined)
      throw new CloudError(
        'NotFound',
        'AGENT_VM_VOLUME_NOT_FOUND',
        `VM ${uuid} has no volume ${volumeUuid}`,
        {
          details: { vmUuid: uuid, volumeUuid },
        },
      );
    if (!Number.isInteger(size) || size <= 0 || size % 512 !== 0) {
      throw new CloudError(
        'Invalid',
        'AGENT_VOLUME_SIZE_INVALID',
        'size must be a positive multiple of 512 bytes',
        {
          details: { field: 'size', value: size },
        },
      );
    }
    if (await running(hv, uuid)) {
      await (await hv.qmp(uuid)).execute('block_resize', { 'node-name': volumeNodeName(volumeUuid), size });
    }
    await hv.writeSpec({
      ...spec,
      volumes: spec.volumes.map((v) => (v.uuid === volumeUuid ? { ...v, size } : v)),
    });
  });
}

export function attachNic(hv: Hypervisor, uuid: string, nic: NicSpec): Promise<void> {
  return hv.serial(uuid, async () => {
    const spec = await hv.specOf(uuid);
    const clash = spec.nics.find((n) => n.deviceId === nic.deviceId && n.uuid !== nic.uuid);
    if (clash !== undefined) {
      throw new CloudError(
        'Conflict',
        'AGENT_DEVICE_ID_IN_USE',
        `deviceId ${nic.deviceId} holds NIC ${clash.uuid}`,
        {
          details: { field: 'nic.deviceId', nicUuid: clash.uuid },
        },
      );
    }
    const device = nicDevice(nic);
    if (await running(hv, uuid)) {
      const qmp = await hv.qmp(uuid);
      if (!(await deviceIds(qmp)).has(nicDeviceId(nic.uuid))) {
        const tap = await hv.opts.plugger.ensureTap(nic);
        await qmp.execute('netdev_add', nicNetdev(nic, tap)).catch((err: unknown) => {
          // left by an earlier attempt that failed at device_add: the same netdev serves
          if (!(err instanceof QmpError && /Duplicate/i.test(err.message))) throw err;
        });
        await qmp.execute('device_add', device);
      }
    }
    await hv.writeSpec({ ...spec, nics: [...spec.nics.filter((n) => n.uuid !== nic.uuid), nic] });
  });
}

export function detachNic(hv: Hypervisor, uuid: string, nicUuid: string): Promise<void> {
  return hv.serial(uuid, async () => {
    const spec = await hv.specOf(uuid);
    if (await running(hv, uuid)) {
      const qmp = await hv.qmp(uuid);
      await unplug(qmp, nicDeviceId(nicUuid));
      await qmp.execute('netdev_del', { id: nicNetdevId(nicUuid) }).catch((err: unknown) => {
        if (!(err instanceof QmpError)) throw err; // already gone
      });
    }
    await hv.opts.plugger.removeTap(nicUuid);
    await hv.writeSpec({ ...spec, nics: spec.nics.filter((n) => n.uuid !== nicUuid) });
  });
}
