/**
 * IPAM's SQL (docs/network.md "IPAM"): allocation by INSERTing a candidate, release by DELETE,
 * capacity by count. The unique index ip_addresses (l3_network_uuid, ip_number) is the only
 * guarantee against a double allocation; no row is updated by every allocation (no hot row),
 * so concurrent allocations on one L3 — from any node — run in parallel and a lost race is just
 * another round.
 *
 * ip_number is numeric(39,0), which pg would parse as a float (src/db/pool.ts): it is always
 * selected as text and written as a decimal string.
 */
import { type Kysely, sql } from 'kysely';
import type { Database, IpUse } from '../../../db/schema.js';
import { CloudError, invalidField, notFound } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { formatIp, type IpVersion, parseIp, toDecimal } from '../../../kernel/ip.js';
import {
  allocatableSpans,
  type Candidate,
  gatewayValues,
  placeStatic,
  type RangeInfo,
  randomCandidates,
  type Span,
  shuffled,
  spansSize,
} from './candidates.js';

export interface IpRequest {
  l3NetworkUuid: string;
  accountUuid: string;
  usedFor: IpUse;
  ownerUuid: string | null;
  vmUuid?: string | null;
  /** a static address */
  ip?: string;
  /** only for a virtual router's guest NIC: the gateway may be taken (as the static `ip`) */
  allowGateway?: boolean;
  /**
   * the uuid to give the ip_addresses row (default: new). When a row with this uuid already
   * exists on the L3 it is returned as is: a re-run step allocates nothing twice.
   */
  uuid?: string;
}

export interface AllocatedIp {
  uuid: string;
  ip: string;
  ipVersion: 4 | 6;
  ipRangeUuid: string;
  prefixLength: number;
  gateway: string | null;
  netmask: string | null;
}

/** candidates tried by one INSERT */
const CANDIDATES = 8;
/** free addresses a gap query returns; concurrent allocators pick among them at random */
const GAP_WINDOW = 64;
/** random rounds before asking the database for actually free addresses */
const RANDOM_ROUNDS = 2;
/** every round is one INSERT that a concurrent allocation can only make lose, never block for long */
const MAX_ROUNDS = 64;

interface L3Plan {
  version: IpVersion;
  allocation: 'random' | 'sequential';
  ranges: RangeInfo[];
}

/**
 * A node reads an L3's ranges at most every PLAN_TTL_MS for allocations (a burst of VM creates
 * on one network would otherwise read them once per NIC). A range never changes once made, only
 * appears or goes, and a stale plan cannot hand out a wrong address: the INSERT re-checks each
 * candidate against the ranges as they are (its range still there, not in a reserved range).
 * What a stale plan can do is miss a new range or offer candidates of a deleted one — so a
 * failure met with a cached plan is retried once with a fresh one.
 */
const PLAN_TTL_MS = 2000;
const plans = new Map<string, { plan: L3Plan; at: number }>();

async function cachedPlan(
  db: Kysely<Database>,
  l3NetworkUuid: string,
): Promise<{ plan: L3Plan; cached: boolean }> {
  const hit = plans.get(l3NetworkUuid);
  if (hit && Date.now() - hit.at < PLAN_TTL_MS) return { plan: hit.plan, cached: true };
  const plan = await loadPlan(db, l3NetworkUuid);
  if (plans.size > 10_000) plans.clear();
  plans.set(l3NetworkUuid, { plan, at: Date.now() });
  return { plan, cached: false };
}

/** Ranges of this L3 changed in this node: the next allocation reads them again. */
export function forgetIpPlan(l3NetworkUuid: string): void {
  plans.delete(l3NetworkUuid);
}

/** The L3's version, strategy and ranges in one round trip. */
async function loadPlan(db: Kysely<Database>, l3NetworkUuid: string): Promise<L3Plan> {
  const { rows } = await sql<{
    version: number;
    allocation: 'random' | 'sequential';
    rid: string | null;
    rtype: 'normal' | 'reserved' | null;
    lo: string | null;
    hi: string | null;
    gw: string | null;
    plen: number | null;
    mask: string | null;
  }>`select l.ip_version as version, l.ip_allocation as allocation, r.uuid as rid, r.type as rtype,
      r.first_number::text as lo, r.last_number::text as hi, r.gateway as gw,
      r.prefix_length as plen, r.netmask as mask
    from l3_networks l left join ip_ranges r on r.l3_network_uuid = l.uuid
    where l.uuid = ${l3NetworkUuid}`.execute(db);
  if (rows.length === 0) throw notFound('l3-network', l3NetworkUuid);
  const version = rows[0]!.version as IpVersion;
  const ranges: RangeInfo[] = [];
  for (const r of rows) {
    if (r.rid === null) continue;
    ranges.push({
      uuid: r.rid,
      type: r.rtype!,
      version,
      first: BigInt(r.lo!),
      last: BigInt(r.hi!),
      gateway: r.gw,
      prefixLength: r.plen!,
      netmask: r.mask,
    });
  }
  return { version, allocation: rows[0]!.allocation, ranges };
}

function exhausted(l3NetworkUuid: string, rounds?: number): CloudError {
  return new CloudError(
    'Conflict',
    'L3_NETWORK_IP_EXHAUSTED',
    `L3 network ${l3NetworkUuid} has no free address`,
    {
      details: { l3NetworkUuid, ...(rounds === undefined ? {} : { rounds }) },
    },
  );
}

/**
 * The lowest free addresses of the spans, from the index: each gap starts at a span's first
 * address when free, or right after a taken address whose successor is free; it runs up to the
 * next taken address (or the span's end) and is expanded into addresses, `limit` in all.
 */
async function freeAddresses(
  db: Kysely<Database>,
  l3: string,
  spans: Span[],
  limit: number,
): Promise<Candidate[]> {
  if (spans.length === 0) return [];
  const { rows } = await sql<{ rid: string; num: string }>`
    select s.rid, f.num::text as num
    from unnest(${spans.map((s) => s.rangeUuid)}::uuid[], ${spans.map((s) => toDecimal(s.first))}::numeric[],
                ${spans.map((s) => toDecimal(s.last))}::numeric[]) as s(rid, lo, hi)
    cross join lateral (
      (select s.lo as start
        where not exists (select 1 from ip_addresses x where x.l3_network_uuid = ${l3} and x.ip_number = s.lo))
      union all
      (select a.ip_number + 1 from ip_addresses a
        where a.l3_network_uuid = ${l3} and a.ip_number >= s.lo and a.ip_number < s.hi
          and not exists (select 1 from ip_addresses b
                          where b.l3_network_uuid = ${l3} and b.ip_number = a.ip_number + 1)
        order by a.ip_number limit ${limit})
    ) gap
    cross join lateral (
      select coalesce((select min(c.ip_number) from ip_addresses c
                       where c.l3_network_uuid = ${l3} and c.ip_number > gap.start and c.ip_number <= s.hi) - 1,
                      s.hi) as stop
    ) gap_end
    cross join lateral generate_series(gap.start, least(gap_end.stop, gap.start + ${limit} - 1)) as f(num)
    order by f.num limit ${limit}`.execute(db);
  return rows.map((r) => ({ rangeUuid: r.rid, value: BigInt(r.num) }));
}

/** One INSERT of the first candidate nobody holds; undefined when every one was taken (or lost to a race). */
async function insertFirstFree(
  db: Kysely<Database>,
  req: IpRequest,
  uuid: string,
  version: IpVersion,
  candidates: Candidate[],
): Promise<{ ip: string; rangeUuid: string } | undefined> {
  const { rows } = await sql<{ ip: string; rid: string }>`
    insert into ip_addresses
      (uuid, l3_network_uuid, ip_range_uuid, ip, ip_number, ip_version, account_uuid, used_for, owner_uuid, vm_uuid)
    select ${uuid}::uuid, ${req.l3NetworkUuid}::uuid, c.rid, c.ip, c.num, ${version}::integer,
      ${req.accountUuid}::uuid, ${req.usedFor}::text, ${req.ownerUuid}::uuid, ${req.vmUuid ?? null}::uuid
    from unnest(${candidates.map((c) => c.rangeUuid)}::uuid[], ${candidates.map((c) => formatIp(c.value, version))}::text[],
                ${candidates.map((c) => toDecimal(c.value))}::numeric[]) with ordinality as c(rid, ip, num, ord)
    where not exists (select 1 from ip_addresses x
                      where x.l3_network_uuid = ${req.l3NetworkUuid} and x.ip_number = c.num)
      -- the plan may be a cached one: the candidate's range must still be there and no
      -- reserved range made since may cover it
      and exists (select 1 from ip_ranges r
                  where r.uuid = c.rid and r.l3_network_uuid = ${req.l3NetworkUuid} and r.type = 'normal'
                    and (c.num between r.first_number and r.last_number or c.num = r.gateway_number))
      and not exists (select 1 from ip_ranges r
                      where r.l3_network_uuid = ${req.l3NetworkUuid} and r.type = 'reserved'
                        and c.num between r.first_number and r.last_number)
    order by c.ord
    limit 1
    on conflict (l3_network_uuid, ip_number) do nothing
    returning ip, ip_range_uuid as rid`.execute(db);
  const row = rows[0];
  return row ? { ip: row.ip, rangeUuid: row.rid } : undefined;
}

function result(uuid: string, ip: string, rangeUuid: string, plan: L3Plan): AllocatedIp {
  const range = plan.ranges.find((r) => r.uuid === rangeUuid)!;
  return {
    uuid,
    ip,
    ipVersion: plan.version,
    ipRangeUuid: rangeUuid,
    prefixLength: range.prefixLength,
    gateway: range.gateway,
    netmask: range.netmask,
  };
}

async function existing(db: Kysely<Database>, req: IpRequest, uuid: string, plan: L3Plan) {
  const row = await db
    .selectFrom('ipAddresses')
    .select(['ip', 'ipRangeUuid', 'l3NetworkUuid'])
    .where('uuid', '=', uuid)
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.l3NetworkUuid !== req.l3NetworkUuid || row.ipRangeUuid === null)
    throw new CloudError('Conflict', 'IP_ADDRESS_UUID_TAKEN', `ip address ${uuid} already exists elsewhere`);
  return result(uuid, row.ip, row.ipRangeUuid, plan);
}

async function allocateStatic(
  db: Kysely<Database>,
  req: IpRequest,
  uuid: string,
  plan: L3Plan,
  text: string,
) {
  const parsed = parseIp(text);
  if (!parsed) throw invalidField('ip', `'${text}' is not an IP address`);
  const place = placeStatic(plan.ranges, parsed.version, parsed.value, req.allowGateway === true);
  if (!place.ok) {
    const why = {
      version: `is not an IPv${plan.version} address`,
      outside: 'is outside the normal IP ranges',
      reserved: 'is in a reserved IP range',
      gateway: 'is the gateway',
    }[place.why];
    throw new CloudError(
      'Invalid',
      'IP_ADDRESS_NOT_IN_RANGE',
      `${text} ${why} of L3 network ${req.l3NetworkUuid}`,
      {
        details: { ip: text, l3NetworkUuid: req.l3NetworkUuid, why: place.why },
      },
    );
  }
  const got = await insertFirstFree(db, req, uuid, plan.version, [
    { rangeUuid: place.range.uuid, value: parsed.value },
  ]);
  if (!got)
    throw new CloudError(
      'Conflict',
      'IP_ADDRESS_TAKEN',
      `${text} is already in use on L3 network ${req.l3NetworkUuid}`,
      {
        details: { ip: formatIp(parsed.value, parsed.version), l3NetworkUuid: req.l3NetworkUuid },
      },
    );
  return result(uuid, got.ip, got.rangeUuid, plan);
}

/**
 * Allocates one address of the L3 (a free one, or the static `ip`). `db` may be a transaction.
 * Throws CloudError L3_NETWORK_IP_EXHAUSTED (Conflict) / IP_ADDRESS_TAKEN (Conflict) /
 * IP_ADDRESS_NOT_IN_RANGE (Invalid) / L3_NETWORK_NO_IP_RANGE (Conflict) / L3_NETWORK_NOT_FOUND.
 */
export async function allocateIp(db: Kysely<Database>, req: IpRequest): Promise<AllocatedIp> {
  const { plan, cached } = await cachedPlan(db, req.l3NetworkUuid);
  if (!cached) return allocateWith(db, req, plan);
  try {
    return await allocateWith(db, req, plan);
  } catch (err) {
    // a refusal met with a cached plan may be the plan's: decide again with the ranges as they are
    if (!(err instanceof CloudError)) throw err;
    forgetIpPlan(req.l3NetworkUuid);
    return allocateWith(db, req, (await cachedPlan(db, req.l3NetworkUuid)).plan);
  }
}

async function allocateWith(db: Kysely<Database>, req: IpRequest, plan: L3Plan): Promise<AllocatedIp> {
  if (!plan.ranges.some((r) => r.type === 'normal'))
    throw new CloudError(
      'Conflict',
      'L3_NETWORK_NO_IP_RANGE',
      `L3 network ${req.l3NetworkUuid} has no IP range`,
      {
        details: { l3NetworkUuid: req.l3NetworkUuid },
      },
    );
  const uuid = req.uuid ?? newId();
  if (req.uuid) {
    const found = await existing(db, req, uuid, plan);
    if (found) return found;
  }
  if (req.ip !== undefined) return allocateStatic(db, req, uuid, plan, req.ip);

  const spans = allocatableSpans(plan.ranges);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    let candidates: Candidate[];
    if (plan.allocation === 'random' && round < RANDOM_ROUNDS) {
      candidates = randomCandidates(spans, CANDIDATES);
    } else {
      // The first sequential round takes the lowest free addresses in order; after a lost race,
      // concurrent allocators spread over a wider window instead of all chasing the lowest one.
      const first = plan.allocation === 'sequential' && round === 0;
      const free = await freeAddresses(db, req.l3NetworkUuid, spans, first ? CANDIDATES : GAP_WINDOW);
      if (free.length === 0) throw exhausted(req.l3NetworkUuid);
      candidates = first ? free : shuffled(free).slice(0, CANDIDATES);
    }
    if (candidates.length === 0) throw exhausted(req.l3NetworkUuid);
    const got = await insertFirstFree(db, req, uuid, plan.version, candidates);
    if (got) return result(uuid, got.ip, got.rangeUuid, plan);
  }
  throw exhausted(req.l3NetworkUuid, MAX_ROUNDS);
}

/** Deletes the matching ip_addresses rows (all given conditions must hold), returns how many. */
export async function releaseIps(
  db: Kysely<Database>,
  where: { uuid?: string; ownerUuid?: string; vmUuid?: string },
): Promise<number> {
  if (where.uuid === undefined && where.ownerUuid === undefined && where.vmUuid === undefined)
    throw new RangeError('releaseIps needs uuid, ownerUuid or vmUuid'); // never "release everything"
  let q = db.deleteFrom('ipAddresses');
  if (where.uuid !== undefined) q = q.where('uuid', '=', where.uuid);
  if (where.ownerUuid !== undefined) q = q.where('ownerUuid', '=', where.ownerUuid);
  if (where.vmUuid !== undefined) q = q.where('vmUuid', '=', where.vmUuid);
  const res = await q.executeTakeFirst();
  return Number(res.numDeletedRows);
}

/**
 * total = allocatable addresses (normal ranges less reserved ones and gateways); used = every
 * allocated address; free = total less the allocated addresses that are not gateways (a
 * router's guest address is the gateway, which total never counted). Numbers past 2^53 (large
 * IPv6 ranges) are capped at Number.MAX_SAFE_INTEGER.
 */
export async function ipCapacity(
  db: Kysely<Database>,
  l3NetworkUuid: string,
): Promise<{ total: number; used: number; free: number }> {
  const plan = await loadPlan(db, l3NetworkUuid);
  const total = spansSize(allocatableSpans(plan.ranges));
  const gateways = gatewayValues(plan.ranges).map(toDecimal);
  const { rows } = await sql<{ used: string; pooled: string }>`
    select count(*)::text as used,
           count(*) filter (where not (ip_number = any(${gateways}::numeric[])))::text as pooled
    from ip_addresses where l3_network_uuid = ${l3NetworkUuid}`.execute(db);
  const used = BigInt(rows[0]!.used);
  const free = total - BigInt(rows[0]!.pooled);
  const cap = (n: bigint) =>
    Number(n > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : n);
  return { total: cap(total), used: cap(used), free: cap(free < 0n ? 0n : free) };
}
