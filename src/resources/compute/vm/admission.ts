/**
 * Admitting a VM create: every field is checked and every problem reported at once; the image
 * (Ready, the caller's own or public), the offering (Enabled), disk offerings and hints are
 * resolved; then, in ONE transaction, the account's quotas (VM count, vCPUs, memory, and the
 * volumes made with it) are reserved, the VM row is inserted (Creating, task 'create') and the
 * job is submitted in the VM's queue. A refusal changes nothing.
 */
import { VM_USER_DATA_MAX_BYTES } from '../../../contract/compute.js';
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { Caller } from '../../../kernel/caller.js';
import { type FieldProblem, forbidden, invalid } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { cachedRow } from '../../admission-cache.js';
import { admitCreate } from '../../common.js';
import { reserveQuota } from '../../identity/quota/quota.js';
import type { ApplianceVmInput, ServiceContext } from '../../service.js';
import { resolveNics } from '../vm-nic/resolve.js';
import { recordUserData, userDataProblem } from './guest-config.js';
import {
  type DataDisk,
  type ImageFacts,
  type PlacementHintsParam,
  type VmCreateParams,
  vmFamily,
  vmQuota,
} from './model.js';

export interface VmCreateBody {
  name: string;
  description?: string;
  imageUuid: string;
  instanceOfferingUuid?: string;
  cpu?: number;
  memory?: number;
  rootDiskSize?: number;
  dataDiskOfferingUuids?: string[];
  dataDiskSizes?: number[];
  deleteDataDisksWithVm?: boolean;
  zoneUuid?: string;
  clusterUuid?: string;
  hostUuid?: string;
  primaryStorageUuid?: string;
  affinityGroupUuid?: string;
  strategy?: 'start' | 'create-stopped';
  haLevel?: 'none' | 'restart-on-failure' | 'restart-on-host-failure';
  l3NetworkUuids?: string[];
  defaultL3NetworkUuid?: string;
  staticIps?: Array<{ l3NetworkUuid: string; ip: string }>;
  securityGroupUuids?: string[];
  /** plain text, kept in vm_guest_configs (never in the job's parameters: it may hold secrets) */
  userData?: string;
}

/** Quota a create reserves: the VM and every volume made with it (volume/model.ts volumeQuota). */
export function createQuota(p: Pick<VmCreateParams, 'cpu' | 'memory' | 'rootDiskSize' | 'dataDisks'>) {
  const data = p.dataDisks.reduce((sum, d) => sum + d.size, 0);
  return {
    ...vmQuota(p.cpu, p.memory),
    'volume.data.num': p.dataDisks.length,
    'volume.capacity': p.rootDiskSize + data,
  };
}

async function lookups(db: Db, b: VmCreateBody) {
  // only what the request names is looked up, all at once
  const maybe = <T>(uuid: string | undefined, q: (uuid: string) => Promise<T | undefined>) =>
    uuid === undefined ? Promise.resolve(undefined) : q(uuid);
  const exists = (table: 'zones' | 'clusters' | 'hosts' | 'primaryStorages', uuid: string | undefined) =>
    maybe(uuid, (u) => db.selectFrom(table).select('uuid').where('uuid', '=', u).executeTakeFirst());
  const [image, offering, diskOfferings, group, zone, cluster, host, ps] = await Promise.all([
    cachedRow(
      b.imageUuid,
      () => db.selectFrom('images').selectAll().where('uuid', '=', b.imageUuid).executeTakeFirst(),
      (i) => i.state === 'Ready',
    ),
    maybe(b.instanceOfferingUuid, (u) =>
      cachedRow(
        u,
        () => db.selectFrom('instanceOfferings').selectAll().where('uuid', '=', u).executeTakeFirst(),
        (o) => o.state === 'Enabled',
      ),
    ),
    b.dataDiskOfferingUuids?.length
      ? db
          .selectFrom('diskOfferings')
          .select(['uuid', 'size', 'state'])
          .where('uuid', 'in', b.dataDiskOfferingUuids)
          .execute()
      : Promise.resolve([]),
    maybe(b.affinityGroupUuid, (u) =>
      db
        .selectFrom('affinityGroups')
        .select(['uuid', 'accountUuid'])
        .where('uuid', '=', u)
        .executeTakeFirst(),
    ),
    exists('zones', b.zoneUuid),
    exists('clusters', b.clusterUuid),
    exists('hosts', b.hostUuid),
    exists('primaryStorages', b.primaryStorageUuid),
  ]);
  return { image, offering, diskOfferings, group, zone, cluster, host, ps };
}

/** Validates and resolves a create request into the job's parameters, or throws every problem. */
export async function resolveCreate(db: Db, caller: Caller, b: VmCreateBody): Promise<VmCreateParams> {
  if (b.hostUuid && !caller.isAdmin) throw forbidden('only the admin may place a VM on a given host');
  const problems: FieldProblem[] = [];
  const bad = (field: string, problem: string) => problems.push({ field, problem });
  const [found, network] = await Promise.all([lookups(db, b), resolveNics(db, caller, b, problems)]);

  const image = found.image;
  const visible =
    image &&
    image.state !== 'Deleted' &&
    (caller.isAdmin || image.isPublic || image.accountUuid === caller.accountUuid);
  if (!image || !visible) bad('imageUuid', `no image ${b.imageUuid}`);
  else if (image.state !== 'Ready')
    bad('imageUuid', `image ${image.uuid} is ${image.state}; it must be Ready`);

  let cpu = b.cpu;
  let memory = b.memory;
  if (b.instanceOfferingUuid) {
    if (b.cpu !== undefined || b.memory !== undefined)
      bad('cpu', 'give an instance offering or cpu and memory, not both');
    const o = found.offering;
    if (!o) bad('instanceOfferingUuid', `no instance offering ${b.instanceOfferingUuid}`);
    else if (o.state !== 'Enabled') bad('instanceOfferingUuid', `instance offering ${o.name} is ${o.state}`);
    else ({ cpu, memory } = o);
  } else {
    if (cpu === undefined) bad('cpu', 'required without an instance offering');
    if (memory === undefined) bad('memory', 'required without an instance offering');
  }

  // the root disk: at least what the image needs (an ISO's blank disk has no minimum but must be given)
  const iso = image?.format === 'iso';
  const minimum = image && !iso ? Math.max(image.size, image.minDisk) : 0;
  const rootDiskSize = b.rootDiskSize ?? minimum;
  if (image && iso && b.rootDiskSize === undefined) bad('rootDiskSize', 'required for an ISO image');
  else if (image && b.rootDiskSize !== undefined && b.rootDiskSize < minimum)
    bad('rootDiskSize', `${b.rootDiskSize} bytes is smaller than the image needs (${minimum})`);
  else if (image && rootDiskSize <= 0) bad('rootDiskSize', 'required: the image does not say its size');

  const dataDisks: DataDisk[] = [];
  for (const [i, uuid] of (b.dataDiskOfferingUuids ?? []).entries()) {
    const d = found.diskOfferings.find((o) => o.uuid === uuid);
    if (!d) bad(`dataDiskOfferingUuids[${i}]`, `no disk offering ${uuid}`);
    else if (d.state !== 'Enabled') bad(`dataDiskOfferingUuids[${i}]`, `disk offering ${uuid} is ${d.state}`);
    else dataDisks.push({ volumeUuid: newId(), size: d.size, diskOfferingUuid: d.uuid });
  }
  for (const size of b.dataDiskSizes ?? [])
    dataDisks.push({ volumeUuid: newId(), size, diskOfferingUuid: null });

  if (b.affinityGroupUuid && (!found.group || found.group.accountUuid !== caller.accountUuid))
    bad('affinityGroupUuid', `no affinity group ${b.affinityGroupUuid} of this account`);
  const hints: PlacementHintsParam = {};
  for (const [field, value, row] of [
    ['zoneUuid', b.zoneUuid, found.zone],
    ['clusterUuid', b.clusterUuid, found.cluster],
    ['hostUuid', b.hostUuid, found.host],
    ['primaryStorageUuid', b.primaryStorageUuid, found.ps],
  ] as const) {
    if (value === undefined) continue;
    if (!row)
      bad(field, `no ${field.replace(/Uuid$/, '').replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`)} ${value}`);
    hints[field] = value;
  }
  if (b.userData !== undefined) {
    const problem = userDataProblem(b.userData, VM_USER_DATA_MAX_BYTES);
    if (problem) bad('userData', problem);
  }
  if (problems.length > 0 || !image || cpu === undefined || memory === undefined) throw invalid(problems);

  const facts: ImageFacts = {
    uuid: image.uuid,
    url: image.url,
    size: image.size,
    actualSize: image.actualSize,
    format: image.format,
    platform: image.platform,
  };
  return {
    name: b.name,
    cpu,
    memory,
    image: facts,
    rootVolumeUuid: newId(),
    rootDiskSize,
    dataDisks,
    deleteDataDisksWithVm: b.deleteDataDisksWithVm ?? false,
    hints,
    affinityGroupUuid: b.affinityGroupUuid ?? null,
    strategy: b.strategy ?? 'start',
    allocatorStrategy: (found.offering?.allocatorStrategy as 'spread' | 'pack' | null | undefined) ?? null,
    nics: network.nics,
    securityGroupUuids: network.securityGroupUuids,
    applianceOf: null,
  };
}

/** Admits the create: quota, the VM row and the job, in one transaction. */
export async function admitVmCreate(ctx: ServiceContext, caller: Caller, b: VmCreateBody): Promise<JobRow> {
  return admitResolved(ctx, caller, b, await resolveCreate(ctx.db, caller, b));
}

/**
 * A VM made for a self-service pool's warm stock: an ordinary create, by the pool's owner, with
 * `alsoInTx` run in the admitting transaction (it records the VM as the pool's), so a pool never
 * holds a VM it does not know of, even across a crash.
 */
export async function admitPoolVmCreate(
  ctx: ServiceContext,
  caller: Caller,
  b: VmCreateBody,
  alsoInTx: (tx: Tx, vmUuid: string) => Promise<void>,
): Promise<JobRow> {
  return admitResolved(ctx, caller, b, await resolveCreate(ctx.db, caller, b), alsoInTx);
}

/**
 * A router's appliance VM: created like any VM, by the admin account (no quota), marked as the
 * appliance of its router (params and the row's `placement`), so its create chain makes no
 * router for its own NICs.
 */
export async function admitApplianceCreate(
  ctx: ServiceContext,
  admin: Caller,
  input: ApplianceVmInput,
): Promise<JobRow> {
  const body = {
    name: input.name,
    description: `appliance of virtual router ${input.routerUuid}`,
    imageUuid: input.imageUuid,
    cpu: input.cpu,
    memory: input.memory,
    zoneUuid: input.zoneUuid,
    l3NetworkUuids: input.nics.map((n) => n.l3NetworkUuid),
    staticIps: input.nics.flatMap((n) => (n.ip ? [{ l3NetworkUuid: n.l3NetworkUuid, ip: n.ip }] : [])),
  };
  const params = await resolveCreate(ctx.db, admin, body);
  // the guest NIC of a router takes its L3's gateway address
  for (const nic of params.nics ?? [])
    nic.allowGateway = input.nics.some(
      (n) => n.l3NetworkUuid === nic.l3NetworkUuid && n.allowGateway === true,
    );
  params.applianceOf = input.routerUuid;
  return admitResolved(ctx, admin, body, params);
}

async function admitResolved(
  ctx: ServiceContext,
  caller: Caller,
  b: VmCreateBody,
  params: VmCreateParams,
  alsoInTx?: (tx: Tx, vmUuid: string) => Promise<void>,
): Promise<JobRow> {
  const row = {
    uuid: newId(),
    name: b.name,
    description: b.description ?? null,
    accountUuid: caller.accountUuid,
    instanceOfferingUuid: b.instanceOfferingUuid ?? null,
    imageUuid: params.image.uuid,
    rootVolumeUuid: params.rootVolumeUuid,
    cpu: params.cpu,
    memory: params.memory,
    platform: params.image.platform,
    state: 'Creating',
    task: 'create',
    affinityGroupUuid: b.affinityGroupUuid ?? null,
    haLevel: b.haLevel ?? 'none',
    hasUserData: b.userData !== undefined,
    placement: JSON.stringify({
      hints: params.hints,
      strategy: params.strategy,
      ...(params.applianceOf ? { applianceOf: params.applianceOf } : {}),
    }),
  };
  // the admin has no quota (reserveQuota does nothing for it): admission is then one statement
  const quota = caller.isAdmin
    ? undefined
    : (tx: Tx) =>
        reserveQuota(tx, { uuid: caller.accountUuid, isAdmin: caller.isAdmin }, createQuota(params));
  const userData = b.userData;
  const check =
    quota || alsoInTx || userData !== undefined
      ? async (tx: Tx) => {
          await quota?.(tx);
          if (userData !== undefined) await recordUserData(tx, row.uuid, userData);
          await alsoInTx?.(tx, row.uuid);
        }
      : undefined;
  return admitCreate(ctx, vmFamily, caller, row, params as unknown as Record<string, unknown>, {
    ...(check ? { check } : {}),
  });
}
