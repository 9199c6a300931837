/**
 * `GET /subnets`: the caller's own ranges and those of every shared network (Neutron lists a
 * shared network's subnets to every project; the ip-ranges kind shows a tenant only its own, so
 * this one list reads the ranges joined to their L3 itself, with the same rule as the networks':
 * own or shared — the admin every one). Paged as every list (facade.ts).
 */
import type { FastifyRequest } from 'fastify';
import { type Expression, type SqlBool, sql } from 'kysely';
import type { Caller } from '../../kernel/caller.js';
import { invalidField } from '../../kernel/errors.js';
import { isUuid } from '../../kernel/ids.js';
import type { OpenStackDeps } from '../deps.js';
import { linksOf, type Page, pagingOf, param } from './facade.js';

export async function subnetPage(
  deps: OpenStackDeps,
  request: FastifyRequest,
  caller: Caller,
  query: Record<string, unknown>,
): Promise<Page> {
  const paging = pagingOf(query);
  const base = () => {
    let q = deps.db
      .selectFrom('ipRanges as r')
      .innerJoin('l3Networks as n', 'n.uuid', 'r.l3NetworkUuid')
      .selectAll('r')
      .where('r.type', '=', 'normal');
    if (!caller.isAdmin)
      q = q.where((eb) => eb.or([eb('r.accountUuid', '=', caller.accountUuid), eb('n.shared', '=', true)]));
    return q;
  };
  if (paging.marker && !(await base().where('r.uuid', '=', paging.marker).executeTakeFirst()))
    throw invalidField('marker', `no item ${paging.marker} in this list`);
  let q = base();
  const none = sql<SqlBool>`false` as Expression<SqlBool>;
  const id = (name: string, column: 'r.uuid' | 'r.l3NetworkUuid' | 'r.accountUuid') => {
    const v = param(query, name);
    if (v === undefined) return;
    q = isUuid(v) ? q.where(column, '=', v.toLowerCase()) : q.where(none);
  };
  id('id', 'r.uuid');
  id('network_id', 'r.l3NetworkUuid');
  id('project_id', 'r.accountUuid');
  id('tenant_id', 'r.accountUuid');
  const name = param(query, 'name');
  if (name !== undefined) q = q.where('r.name', '=', name);
  const gateway = param(query, 'gateway_ip');
  if (gateway !== undefined) q = q.where('r.gateway', '=', gateway);
  const version = param(query, 'ip_version');
  if (version !== undefined) {
    if (version !== '4' && version !== '6') throw invalidField('ip_version', 'must be 4 or 6');
    q = q.where('r.ipVersion', '=', Number(version));
  }
  if (paging.marker) q = q.where('r.uuid', paging.reverse ? '<' : '>', paging.marker);
  const rows = await q
    .orderBy('r.uuid', paging.reverse ? 'desc' : 'asc')
    .limit(paging.limit + 1)
    .execute();
  const more = rows.length > paging.limit;
  let page = rows.slice(0, paging.limit) as unknown as Record<string, unknown>[];
  if (paging.reverse) page = page.reverse();
  return {
    rows: page,
    links: linksOf(request, paging, page[0]?.uuid as string, page.at(-1)?.uuid as string, more),
  };
}
