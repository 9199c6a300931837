/**
 * Capacity arithmetic, in one place so that the caller's conditional reservation UPDATEs can use
 * exactly the same formulas (see docs/scheduler.md). Everything is in whole vCPUs and bytes;
 * over-committed totals are floored so the comparison stays in integers.
 */
import type { HostCandidate, PlacementRequest, SchedulerConfig, StorageCandidate } from './types.js';

/** vCPUs still promisable: ⌊cpuTotal × cpuOvercommit⌋ − cpuUsed. */
export function freeCpu(host: HostCandidate, cfg: SchedulerConfig): number {
  return Math.floor(host.cpuTotal * cfg.cpuOvercommit) - host.cpuUsed;
}

/** Bytes still promisable: ⌊memoryTotal × memoryOvercommit⌋ − reservedMemoryPerHost − memoryUsed. */
export function freeMemory(host: HostCandidate, cfg: SchedulerConfig): number {
  return Math.floor(host.memoryTotal * cfg.memoryOvercommit) - cfg.reservedMemoryPerHost - host.memoryUsed;
}

/** Bytes still promisable on a storage: ⌊capacityTotal × overProvisioningRatio⌋ − capacityUsed. */
export function freeStorage(ps: StorageCandidate): number {
  return Math.floor(ps.capacityTotal * ps.overProvisioningRatio) - ps.capacityUsed;
}

/** Root plus data volumes, in bytes. */
export function diskBytes(req: PlacementRequest): number {
  let sum = req.rootDiskSize;
  const data = req.dataDiskSizes;
  if (data) for (let i = 0; i < data.length; i++) sum += data[i]!;
  return sum;
}

/** What the VM's volumes take on `ps`: the disks, plus the image when it must be cached there first. */
export function storageNeed(ps: StorageCandidate, disks: number, imageSize: number): number {
  return ps.hasImageCached ? disks : disks + imageSize;
}
