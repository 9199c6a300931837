/**
 * Which columns a list shows: the contract's columns by default, any field of the kind's
 * resource on demand (those a tenant may not see are not offered). The choice lives in the URL
 * (`cols=name,state,cpu`), so a list with its columns can be bookmarked and shared.
 */
import { MultiSelect } from '@mantine/core';

export function ColumnPicker(p: { fields: string[]; value: string[]; onChange: (cols: string[]) => void }) {
  return (
    <MultiSelect
      label="Columns"
      data={p.fields}
      value={p.value}
      onChange={p.onChange}
      searchable
      maw={560}
      size="xs"
    />
  );
}
