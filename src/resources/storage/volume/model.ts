/**
 * Volumes: what a volume is and the rules every volume operation shares.
 *
 * Invariants:
 * - a volume row exists ⟺ its `size` is reserved on its primary storage (on its host's share for
 *   local storage): the row is inserted in the transaction that reserves the capacity and deleted
 *   in the one that releases it, so the storage's `used` is the sum of its volumes (+ image cache);
 * - a volume's quota (`volume.capacity`, and `volume.data.num` for data volumes) is held from the
 *   admission that created it until it is expunged: whoever admits reserves, whoever expunges
 *   releases (`volumeQuota` says how much); a soft-deleted volume still holds both;
 * - a volume is attached to at most one VM (`vm_uuid`), at a device id unique on that VM
 *   (0 = root; data volumes take the lowest free id ≥ 1), enforced by a unique index.
 */
import type { Selectable } from 'kysely';
import type { VolumeSnapshotTable, VolumeTable } from '../../../db/schema.js';
import { CloudError } from '../../../kernel/errors.js';
import type { Family } from '../../common.js';
import type { QuotaUsage } from '../../identity/quota/quota.js';

export type VolumeRow = Selectable<VolumeTable>;
export type SnapshotRow = Selectable<VolumeSnapshotTable>;
export type VolumeState = 'Creating' | 'Ready' | 'Deleted' | 'Expunging';

export const volumeFamily: Family = { singular: 'volume', kind: 'volumes', table: 'volumes' };
export const snapshotFamily: Family = {
  singular: 'volume-snapshot',
  kind: 'volume-snapshots',
  table: 'volumeSnapshots',
};

/**
 * The format a volume takes on a type of primary storage. On ceph, RBD itself is the
 * copy-on-write layer (clones of a cached image's protected snapshot, RBD snapshots), so its
 * volumes are raw: a qcow2 asked for there is refused, none asked gives raw. Elsewhere the asked
 * format, qcow2 by default. Volumes a VM create makes take the format of their image only as a
 * default: provisionVolume records raw on ceph whatever it was given (the cache on ceph holds the
 * image converted to raw), in the statement that reserves the capacity.
 */
export function volumeFormatOn(storageType: string, asked: string | undefined): string {
  if (storageType !== 'ceph') return asked ?? 'qcow2';
  if (asked !== undefined && asked !== 'raw') {
    throw new CloudError(
      'Invalid',
      'VOLUME_FORMAT_UNSUPPORTED',
      `format: ceph primary storage holds raw volumes only (RBD is the copy-on-write layer), ${asked} asked`,
      { details: { fields: [{ field: 'format', problem: `ceph primary storage holds raw volumes only` }] } },
    );
  }
  return 'raw';
}

/** virtio disks a VM may have (device ids 0…MAX_DEVICE_ID) */
export const MAX_DEVICE_ID = 127;

/** Linux's virtio disk names: 0 → vda, 25 → vdz, 26 → vdaa, … */
export function deviceName(deviceId: number | null): string | null {
  if (deviceId === null || deviceId < 0 || !Number.isInteger(deviceId)) return null;
  let n = deviceId;
  let letters = '';
  do {
    letters = String.fromCharCode(97 + (n % 26)) + letters;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `vd${letters}`;
}

/** The lowest device id ≥ 1 not in `taken` (0 is the root volume's), or null when the VM is full. */
export function lowestFreeDevice(taken: Iterable<number | null>): number | null {
  const used = new Set(taken);
  for (let id = 1; id <= MAX_DEVICE_ID; id++) if (!used.has(id)) return id;
  return null;
}

/** The quota a volume holds from its admission until it is expunged. */
export function volumeQuota(volume: { type: 'Root' | 'Data'; size: number }): QuotaUsage {
  return volume.type === 'Data'
    ? { 'volume.data.num': 1, 'volume.capacity': volume.size }
    : { 'volume.capacity': volume.size };
}

/** What the API shows: the row plus its device name. */
export function presentVolume(row: Record<string, unknown>): Record<string, unknown> {
  const id = row.deviceId;
  return { ...row, deviceName: typeof id === 'number' ? deviceName(id) : null };
}

export function volumeState(volume: { uuid: string; state: string }, op: string, needs: VolumeState[]): void {
  if (!needs.includes(volume.state as VolumeState)) {
    throw new CloudError(
      'Conflict',
      'VOLUME_INVALID_STATE',
      `cannot ${op} volume ${volume.uuid}: it is ${volume.state}; ${op} needs ${needs.join(' or ')}`,
      { details: { state: volume.state, operation: op, allowedStates: needs } },
    );
  }
}

export function volumeGone(uuid: string): CloudError {
  return new CloudError('NotFound', 'VOLUME_NOT_FOUND', `volume ${uuid} not found`, {
    details: { kind: 'volume', id: uuid },
  });
}
