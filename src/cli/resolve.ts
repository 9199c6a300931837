/**
 * `<uuid-or-name>` → uuid. A UUID is used as is (no round trip); anything else is looked up as an
 * exact name with the list API, and must match exactly one resource: names are unique only per
 * account and kind, so an admin may see several, and guessing would act on the wrong one.
 * VM NICs have no name of their own: one is named by its address, or by its VM (`app2`, the VM's
 * default NIC) optionally with its L3 (`app2:private-1`). Other kinds without a `name` (jobs,
 * events, tags) take their id verbatim.
 */
import { noun } from '../contract/wording.js';
import type { KindContract } from './catalog.js';
import { LocalError } from './errors.js';
import { asJsonSchema } from './flags.js';
import type { ApiClient } from './http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID.test(s);
}

export function hasName(kind: KindContract): boolean {
  return asJsonSchema(kind.resource).properties?.name !== undefined;
}

export async function resolveId(client: ApiClient, kind: KindContract, nameOrUuid: string): Promise<string> {
  if (isUuid(nameOrUuid)) return nameOrUuid;
  if (kind.kind === 'vm-nics') return resolveVmNic(client, nameOrUuid);
  if (!hasName(kind)) return nameOrUuid;
  const res = await client.get(`/v1/${kind.kind}`, [
    ['q', `name=${nameOrUuid}`],
    ['limit', '5'],
    ['fields', 'uuid,name'],
  ]);
  const items = itemsOf(res.body);
  const uuids = items.map((i) => (typeof i.uuid === 'string' ? i.uuid : '')).filter((u) => u !== '');
  if (uuids.length === 0)
    throw new LocalError('NOT_FOUND', `no ${noun(kind.singular)} named '${nameOrUuid}'`);
  if (uuids.length > 1) {
    throw new LocalError(
      'AMBIGUOUS_NAME',
      `${uuids.length === 5 ? '5 or more' : uuids.length} ${noun(kind.kind)} are named '${nameOrUuid}': use a uuid (${uuids.join(', ')})`,
    );
  }
  return uuids[0] ?? nameOrUuid;
}

export function itemsOf(page: unknown): Array<Record<string, unknown>> {
  if (typeof page !== 'object' || page === null || !('items' in page) || !Array.isArray(page.items))
    return [];
  return page.items.filter((i): i is Record<string, unknown> => typeof i === 'object' && i !== null);
}

/** A NIC by address, by VM name (its default NIC) or by `vm:l3` (its NIC on that L3). */
export async function resolveVmNic(client: ApiClient, ref: string): Promise<string> {
  const colon = ref.indexOf(':');
  // node:net loads only here: most commands never name a NIC (start-up time)
  const byIp = (await import('node:net')).isIP(ref) !== 0;
  const vm = byIp ? '' : colon < 0 ? ref : ref.slice(0, colon);
  const l3 = byIp || colon < 0 ? '' : ref.slice(colon + 1);
  const query: Array<[string, string]> = byIp ? [['q', `ip=${ref}`]] : [['q', `vm.name=${vm}`]];
  if (l3) query.push(['q', `l3Network.name=${l3}`]);
  query.push(['limit', '50'], ['fields', 'uuid,vmUuid,isDefault,ip']);
  let nics = itemsOf((await client.get('/v1/vm-nics', query)).body);
  const what = byIp ? `with the address ${ref}` : l3 ? `of VM '${vm}' on '${l3}'` : `of VM '${vm}'`;
  if (nics.length === 0) throw new LocalError('NOT_FOUND', `no VM NIC ${what}`);
  const vms = new Set(nics.map((n) => n.vmUuid));
  if (vms.size > 1) {
    throw new LocalError(
      'AMBIGUOUS_NAME',
      `${vms.size} VMs match '${ref}': name the NIC by uuid (${nics.map((n) => n.uuid).join(', ')})`,
    );
  }
  if (nics.length > 1) nics = nics.filter((n) => n.isDefault === true);
  const uuid = nics[0]?.uuid;
  if (nics.length !== 1 || typeof uuid !== 'string')
    throw new LocalError('AMBIGUOUS_NAME', `VM '${vm}' has several NICs: name one as ${vm}:<l3-network>`);
  return uuid;
}
