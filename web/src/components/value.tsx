/** One field of a resource as a person reads it: sizes in GiB, times local, references by name with a link. */
import { Anchor, Badge, Text } from '@mantine/core';
import { Link } from 'react-router';
import { fieldUnit, relatedKind } from '../api/catalog';
import type { CatalogKind } from '../api/catalog-types';
import type { Names } from '../api/names';
import { bytes, plain, when } from '../format';

const STATE_COLORS: Record<string, string> = {
  Running: 'green',
  Connected: 'green',
  Enabled: 'green',
  Ready: 'green',
  Succeeded: 'green',
  Stopped: 'gray',
  Disabled: 'gray',
  Failed: 'red',
  Error: 'red',
  Disconnected: 'red',
  Unknown: 'orange',
  Cancelled: 'gray',
};

export function Value({
  k,
  field,
  value,
  names,
}: {
  k: CatalogKind;
  field: string;
  value: unknown;
  names: Names;
}) {
  if (value === null || value === undefined) return <Text c="dimmed">—</Text>;
  if (fieldUnit(k, field) === 'bytes') return <>{bytes(value)}</>;
  if ((field === 'state' || field === 'status') && typeof value === 'string')
    return (
      <Badge variant="light" color={STATE_COLORS[value] ?? (value.endsWith('ing') ? 'yellow' : 'blue')}>
        {value}
      </Badge>
    );
  if (typeof value === 'string' && /At$/.test(field)) return <>{when(value)}</>;
  if (typeof value === 'string' && field.endsWith('Uuid')) {
    const target = relatedKind(k.kind, field);
    const name = names.get(value);
    if (target && name)
      return (
        <Anchor component={Link} to={`/${target}/${value}`}>
          {name}
        </Anchor>
      );
    return (
      <Text ff="monospace" size="sm">
        {value}
      </Text>
    );
  }
  if (typeof value === 'boolean') return <>{value ? 'yes' : 'no'}</>;
  return <>{plain(value)}</>;
}

/** The uuids of a page's rows that name other resources, per related kind (for useNames). */
export function referencedUuids(
  k: CatalogKind,
  rows: Record<string, unknown>[],
  fields: string[],
): Record<string, Set<string>> {
  const wanted: Record<string, Set<string>> = {};
  for (const field of fields) {
    const target = relatedKind(k.kind, field);
    if (!target) continue;
    for (const row of rows) {
      const v = row[field];
      if (typeof v !== 'string') continue;
      const set = wanted[target] ?? new Set<string>();
      set.add(v);
      wanted[target] = set;
    }
  }
  return wanted;
}
