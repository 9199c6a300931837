/**
 * A volume as QEMU block nodes and a virtio-blk device. The same JSON serves the command line
 * (`-blockdev <json>`) and QMP hot-plug (`blockdev-add`), so a cold-started and a hot-plugged
 * disk are identical (which live migration needs). Names are derived from the volume UUID
 * alone, never stored: device id `vol-<uuid>`, node name `v<24 hex of sha256(uuid)>` (QEMU node
 * names are at most 31 characters). PCI slots are fixed by deviceId so the guest sees vda, vdb, …
 * in deviceId order: volumes at slots 0x10+deviceId, NICs at 0x03+deviceId, the config drive at 0x1f.
 */
import { createHash } from 'node:crypto';
import type { NicSpec, VolumeSpec } from '../../contract/agent.js';
import { CloudError, invalidField } from '../../kernel/errors.js';

export const MAX_VOLUMES = 15;
export const MAX_NICS = 8;
export const CONFIG_DRIVE_SLOT = 0x1f;
export const CONFIG_DRIVE_NODE = 'cfgdrive';
export const CONFIG_DRIVE_DEVICE = 'config-drive';

export const volumeDeviceId = (uuid: string) => `vol-${uuid}`;
export const volumeNodeName = (uuid: string) =>
  `v${createHash('sha256').update(uuid).digest('hex').slice(0, 24)}`;
export const nicDeviceId = (uuid: string) => `nic-${uuid}`;
export const nicNetdevId = (uuid: string) => `net-${uuid}`;

export const hexSlot = (slot: number) => `0x${slot.toString(16)}`;

export function volumeSlot(volume: VolumeSpec): number {
  if (!Number.isInteger(volume.deviceId) || volume.deviceId < 0 || volume.deviceId >= MAX_VOLUMES) {
    throw invalidField(
      'volume.deviceId',
      `must be an integer from 0 to ${MAX_VOLUMES - 1}`,
      'AGENT_DEVICE_ID_INVALID',
    );
  }
  return 0x10 + volume.deviceId;
}

export function nicSlot(nic: NicSpec): number {
  if (!Number.isInteger(nic.deviceId) || nic.deviceId < 0 || nic.deviceId >= MAX_NICS) {
    throw invalidField(
      'nic.deviceId',
      `must be an integer from 0 to ${MAX_NICS - 1}`,
      'AGENT_DEVICE_ID_INVALID',
    );
  }
  return 0x03 + nic.deviceId;
}

type Json = Record<string, unknown>;

/** The protocol node for where a volume lives: a local path, `nfs://host/path` or `rbd:pool/image[:conf=…]`. */
export function protocolNode(path: string): Json {
  if (path.startsWith('/')) return { driver: 'file', filename: path };
  if (path.startsWith('nfs://')) {
    const url = new URL(path);
    if (url.hostname === '' || url.pathname === '/') {
      throw invalidField('volume.path', `not an nfs://host/path URL: ${path}`, 'AGENT_VOLUME_PATH_INVALID');
    }
    return {
      driver: 'nfs',
      server: { type: 'inet', host: url.hostname },
      path: decodeURIComponent(url.pathname),
    };
  }
  if (path.startsWith('rbd:')) {
    const [spec = '', ...opts] = path.slice(4).split(':');
    const parts = spec.split('/');
    if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
      throw invalidField('volume.path', `not an rbd:pool/image URL: ${path}`, 'AGENT_VOLUME_PATH_INVALID');
    }
    const node: Json = { driver: 'rbd', pool: parts[0], image: parts[parts.length - 1] };
    if (parts.length === 3) node.namespace = parts[1];
    for (const opt of opts) {
      const [key, value] = opt.split('=');
      if (key === 'conf' && value) node.conf = value;
      else if (key === 'id' && value) node.user = value;
    }
    return node;
  }
  throw invalidField(
    'volume.path',
    `must be an absolute path, nfs:// or rbd: URL, got ${path}`,
    'AGENT_VOLUME_PATH_INVALID',
  );
}

export function formatDriver(format: string): 'qcow2' | 'raw' {
  if (format === 'qcow2' || format === 'raw') return format;
  throw new CloudError(
    'Invalid',
    'AGENT_VOLUME_FORMAT_UNSUPPORTED',
    `volume format ${format} is not qcow2 or raw`,
    {
      details: { field: 'volume.format', value: format },
    },
  );
}

export function volumeBlockdev(volume: VolumeSpec): Json {
  return {
    driver: formatDriver(volume.format),
    'node-name': volumeNodeName(volume.uuid),
    file: protocolNode(volume.path),
    discard: 'unmap',
  };
}

export function volumeDevice(volume: VolumeSpec): Json {
  const device: Json = {
    driver: 'virtio-blk-pci',
    id: volumeDeviceId(volume.uuid),
    drive: volumeNodeName(volume.uuid),
    addr: hexSlot(volumeSlot(volume)),
    serial: volume.uuid.replace(/-/g, '').slice(0, 20),
  };
  if (volume.deviceId === 0) device.bootindex = 0;
  return device;
}

export function nicDevice(nic: NicSpec): Json {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(nic.mac)) {
    throw invalidField('nic.mac', `not a MAC address: ${nic.mac}`, 'AGENT_NIC_MAC_INVALID');
  }
  return {
    driver: 'virtio-net-pci',
    id: nicDeviceId(nic.uuid),
    netdev: nicNetdevId(nic.uuid),
    mac: nic.mac.toLowerCase(),
    addr: hexSlot(nicSlot(nic)),
  };
}

export function nicNetdev(nic: NicSpec, tap: string): Json {
  return { type: 'tap', id: nicNetdevId(nic.uuid), ifname: tap, script: 'no', downscript: 'no' };
}

export function configDriveBlockdev(path: string): Json {
  return {
    driver: 'raw',
    'node-name': CONFIG_DRIVE_NODE,
    'read-only': true,
    file: { driver: 'file', filename: path },
  };
}

export function configDriveDevice(): Json {
  return {
    driver: 'virtio-blk-pci',
    id: CONFIG_DRIVE_DEVICE,
    drive: CONFIG_DRIVE_NODE,
    addr: hexSlot(CONFIG_DRIVE_SLOT),
  };
}
