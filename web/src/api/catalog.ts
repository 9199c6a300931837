/** Lookups over the catalog of kinds: which a caller may see, how a field reads, what a uuid points to. */
import catalog from 'virtual:nimbus-catalog';
import type { CatalogKind, QueryInfo } from './catalog-types';

export const KINDS: CatalogKind[] = catalog.kinds;
export const VM_STATES: string[] = catalog.vmStates;

const byKind = new Map(KINDS.map((k) => [k.kind, k]));

export function kindOf(kind: string): CatalogKind | undefined {
  return byKind.get(kind);
}

export function queryInfo(kind: string): QueryInfo | undefined {
  return catalog.query[kind];
}

/**
 * Kinds a caller may list. The API decides (a tenant's GET /v1/hosts is refused): the console
 * only leaves out of its menus what would be refused, so a tenant never sees hosts or accounts.
 */
export function visibleKinds(isAdmin: boolean): CatalogKind[] {
  return KINDS.filter((k) => isAdmin || queryInfo(k.kind)?.visibility !== 'admin');
}

/**
 * Actions the caller may run on a resource: the admin all; a tenant those of its own resources
 * (not the admin's `admin` ones), and on an admin-only kind only those marked `tenant`.
 */
export function actionsFor(
  k: CatalogKind,
  isAdmin: boolean,
  owned: boolean,
): [string, NonNullable<CatalogKind['actions']>[string]][] {
  return Object.entries(k.actions ?? {}).filter(
    ([, a]) => isAdmin || (k.adminOnly ? a.tenant : owned && !a.admin),
  );
}

/** A field a tenant is not shown: a reference to what it may not see (a VM's host, cluster, account). */
export function hiddenFrom(kind: string, field: string, isAdmin: boolean): boolean {
  if (isAdmin) return false;
  const target = relatedKind(kind, field);
  return !!target && queryInfo(target)?.visibility === 'admin';
}

/**
 * The kind a `…Uuid` field points to: the query schema's relation when there is one (hostUuid →
 * hosts), else the naming convention `<role><Singular>Uuid` (lastHostUuid → hosts).
 */
export function relatedKind(kind: string, field: string): string | undefined {
  const rels = queryInfo(kind)?.relations ?? {};
  for (const rel of Object.values(rels))
    if (!rel.many && rel.local === field && rel.remote === 'uuid') return rel.kind;
  if (!field.endsWith('Uuid') || field === 'uuid') return undefined;
  for (const k of KINDS) {
    const camel = k.singular.replace(/-(.)/g, (_, c: string) => c.toUpperCase());
    if (field === `${camel}Uuid` || field.endsWith(`${camel.charAt(0).toUpperCase()}${camel.slice(1)}Uuid`))
      return k.kind;
  }
  return undefined;
}

/** How a field of a kind's resource reads: `x-unit: bytes` fields are shown in GiB/MiB. */
export function fieldUnit(k: CatalogKind, field: string): string | undefined {
  const prop = (k.resource.properties as Record<string, Record<string, unknown>>)[field];
  const unit = prop?.['x-unit'];
  return typeof unit === 'string' ? unit : undefined;
}

export function fieldDescription(k: CatalogKind, field: string): string | undefined {
  const prop = (k.resource.properties as Record<string, Record<string, unknown>>)[field];
  return typeof prop?.description === 'string' ? prop.description : undefined;
}

const WORDS: Record<string, string> = {
  vm: 'VM',
  vms: 'VMs',
  l2: 'L2',
  l3: 'L3',
  ip: 'IP',
  vips: 'VIPs',
  eips: 'EIPs',
  vxlan: 'VXLAN',
  nics: 'NICs',
};

/** A kind's name as a person reads it: `l3-networks` → `L3 networks`. */
export function title(k: CatalogKind): string {
  return k.kind
    .split('-')
    .map((w, i) => WORDS[w] ?? (i === 0 ? w.charAt(0).toUpperCase() + w.slice(1) : w))
    .join(' ');
}
