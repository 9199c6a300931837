/**
 * Which Nimbus L2 a Neutron network is made on. A Neutron network is an L2 segment plus the L3
 * (addressing) on it; in Nimbus the admin makes the L2s (bridges on hosts, attached to clusters)
 * and accounts make L3s on them. So a network create makes an L3 on an existing L2:
 * - `provider:physical_network` names it (by name or physical interface), and the
 *   `provider:network_type` / `provider:segmentation_id` given must be that L2's;
 * - else the L2 the admin marked for tenant networks with the tag `openstack=tenant-networks`;
 * - else the only L2 there is.
 * Anything else is a 400 naming `provider:physical_network`, with the choices.
 */
import type { Caller } from '../../kernel/caller.js';
import { invalid, invalidField } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import { listAll } from './facade.js';

export const TENANT_L2_TAG = 'openstack=tenant-networks';

/** Nimbus L2 type → Neutron network_type */
export const NETWORK_TYPE: Record<string, string> = { 'no-vlan': 'flat', vlan: 'vlan', vxlan: 'vxlan' };

export function providerOf(l2: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!l2)
    return {
      'provider:network_type': null,
      'provider:physical_network': null,
      'provider:segmentation_id': null,
    };
  return {
    'provider:network_type': NETWORK_TYPE[l2.type as string] ?? null,
    'provider:physical_network': (l2.physicalInterface as string | null) ?? (l2.name as string),
    'provider:segmentation_id': (l2.vlan as number | null) ?? (l2.vni as number | null) ?? null,
  };
}

export interface ProviderInput {
  'provider:network_type'?: string;
  'provider:physical_network'?: string;
  'provider:segmentation_id'?: number;
}

export async function chooseL2(
  deps: OpenStackDeps,
  caller: Caller,
  input: ProviderInput,
): Promise<Record<string, unknown>> {
  const physical = input['provider:physical_network'];
  let l2: Record<string, unknown> | undefined;
  if (physical !== undefined) {
    const all = await listAll(deps, 'l2-networks', caller, []);
    const named = all.filter((r) => r.name === physical || r.physicalInterface === physical);
    if (named.length !== 1)
      throw invalidField(
        'provider:physical_network',
        named.length === 0
          ? `no L2 network named or on interface '${physical}' (there are: ${all.map((r) => r.name).join(', ') || 'none'})`
          : `'${physical}' names ${named.length} L2 networks; give one's name`,
      );
    l2 = named[0];
  } else {
    const tagged = await listAll(deps, 'l2-networks', caller, [`tag=${TENANT_L2_TAG}`]);
    if (tagged.length > 1)
      throw invalidField(
        'provider:physical_network',
        `several L2 networks carry the tag ${TENANT_L2_TAG} (${tagged.map((r) => r.name).join(', ')}): name one`,
      );
    l2 = tagged[0];
    if (!l2) {
      const all = await listAll(deps, 'l2-networks', caller, []);
      if (all.length !== 1)
        throw invalidField(
          'provider:physical_network',
          all.length === 0
            ? 'there is no L2 network to make it on (the admin makes L2 networks)'
            : `name the L2 network to make it on (${all.map((r) => r.name).join(', ')}), or let the admin tag one ${TENANT_L2_TAG}`,
        );
      l2 = all[0];
    }
  }
  const chosen = l2 as Record<string, unknown>;
  // the provider attributes describe the L2; Nimbus makes no segment through this API
  const actual = providerOf(chosen);
  const problems: { field: string; problem: string }[] = [];
  for (const field of ['provider:network_type', 'provider:segmentation_id'] as const) {
    const given = input[field];
    if (given !== undefined && given !== actual[field])
      problems.push({
        field,
        problem: `the L2 network ${chosen.name as string} has ${String(actual[field])}; Nimbus makes L2 segments only through its own API (admin)`,
      });
  }
  if (problems.length > 0) throw invalid(problems);
  return chosen;
}
