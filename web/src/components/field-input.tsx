/**
 * One field of a request body (a create form's, an action's), chosen from its schema in the
 * contract: a checkbox, a choice for an enum, a number (sizes in GiB, durations in hours: the
 * body still carries bytes and seconds), a choice of resources by name for a reference
 * (`imageUuid`, `l3NetworkUuids`), a list, a text area for scripts and keys, JSON for nested
 * objects. `error` is shown under the field: a problem found as the user types, or the API's.
 */
import { Checkbox, MultiSelect, NumberInput, Select, TagsInput, Textarea, TextInput } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { queryInfo, relatedKind } from '../api/catalog';
import { get, type ListPage, listPath } from '../api/client';
import { canResolve } from '../api/names';
import type { Schema } from '../api/validate';

const GiB = 1024 ** 3;
const HOUR = 3600;

export interface FieldInputProps {
  /** the kind whose body this is: names the kind a reference points to */
  kind: string;
  field: string;
  schema: Schema;
  required: boolean;
  value: unknown;
  onChange: (v: unknown) => void;
  error?: string | undefined;
}

/** enum values, or the consts of an anyOf (TypeBox's enums and literal unions) */
export function choicesOf(s: Schema): unknown[] | undefined {
  if (s.enum) return s.enum;
  const consts = s.anyOf?.map((a) => a.const).filter((c) => c !== undefined);
  return consts?.length ? consts : undefined;
}

/** The kind a body field refers to: `imageUuid` → images, `l3NetworkUuids` → l3-networks. */
export function referenceOf(kind: string, field: string, s: Schema): string | undefined {
  const uuidish = s.format === 'uuid' || (s.type === 'array' && s.items?.format === 'uuid');
  if (!uuidish) return undefined;
  const singular = s.type === 'array' ? field.replace(/s$/, '') : field;
  const target = relatedKind(kind, singular);
  return target && canResolve(target) ? target : undefined;
}

function useOptions(target: string | undefined) {
  return useQuery({
    queryKey: ['options', target],
    enabled: !!target,
    staleTime: 10_000,
    queryFn: async () => {
      const info = target ? queryInfo(target) : undefined;
      const fields = ['uuid', 'name', ...(info && 'state' in info.fields ? ['state'] : [])];
      const page = await get<ListPage<{ uuid: string; name: string; state?: string }>>(
        listPath(target ?? '', { fields, sort: 'name', limit: 1000 }),
      );
      return page.items.map((r) => ({
        value: r.uuid,
        label: r.state ? `${r.name} (${r.state})` : r.name,
      }));
    },
  });
}

export function FieldInput(p: FieldInputProps) {
  const { schema: s, field } = p;
  const target = referenceOf(p.kind, field, s);
  const options = useOptions(target);
  const unit = s['x-unit'] ?? (s.type === 'array' ? s.items?.['x-unit'] : undefined);
  const scale = unit === 'bytes' ? GiB : unit === 'seconds' ? HOUR : 1;
  const suffix = unit === 'bytes' ? ' (GiB)' : unit === 'seconds' ? ' (hours)' : '';
  const common = {
    label: `${field}${suffix}`,
    description: s.description,
    required: p.required,
    error: p.error,
    name: field,
  };
  const choices = choicesOf(s);

  if (target && s.type === 'array')
    return (
      <MultiSelect
        {...common}
        searchable
        data={options.data ?? []}
        value={(p.value as string[] | undefined) ?? []}
        onChange={(v) => p.onChange(v.length ? v : undefined)}
      />
    );
  if (target)
    return (
      <Select
        {...common}
        searchable
        clearable
        data={options.data ?? []}
        value={(p.value as string | undefined) ?? null}
        onChange={(v) => p.onChange(v ?? undefined)}
      />
    );
  if (s.type === 'boolean')
    return (
      <Checkbox
        label={field}
        description={s.description}
        error={p.error}
        name={field}
        checked={p.value === true}
        onChange={(e) => p.onChange(e.currentTarget.checked ? true : undefined)}
      />
    );
  if (choices)
    return (
      <Select
        {...common}
        clearable={!p.required}
        data={choices.map(String)}
        value={p.value === undefined ? null : String(p.value)}
        onChange={(v) => p.onChange(v === null ? undefined : (choices.find((c) => String(c) === v) ?? v))}
      />
    );
  if (s.type === 'integer' || s.type === 'number')
    return (
      <NumberInput
        {...common}
        value={typeof p.value === 'number' ? p.value / scale : ''}
        onChange={(v) => p.onChange(typeof v === 'number' ? Math.round(v * scale) : undefined)}
      />
    );
  if (s.type === 'array' && s.items?.type !== 'object')
    return (
      <TagsInput
        {...common}
        description={`${s.description ?? ''} (Enter after each)`.trim()}
        value={((p.value as unknown[] | undefined) ?? []).map((v) =>
          String(typeof v === 'number' ? v / scale : v),
        )}
        onChange={(v) => {
          const numeric = s.items?.type === 'integer' || s.items?.type === 'number';
          const items = v.map((x) => (numeric ? Math.round(Number(x) * scale) : x));
          p.onChange(items.length ? items : undefined);
        }}
      />
    );
  if (s.type === 'array' || s.type === 'object') return <JsonInput {...p} label={common.label} />;
  if ((s.maxLength ?? 0) > 2048 || /userData|sshKey|script/i.test(field))
    return (
      <Textarea
        {...common}
        autosize
        minRows={3}
        value={(p.value as string | undefined) ?? ''}
        onChange={(e) => p.onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value)}
      />
    );
  return (
    <TextInput
      {...common}
      value={(p.value as string | undefined) ?? ''}
      onChange={(e) => p.onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value)}
    />
  );
}

/** Nested objects (static IPs, host routes) as JSON: what does not parse is said under the field. */
function JsonInput(p: FieldInputProps & { label: string }) {
  const [text, setText] = useState(p.value === undefined ? '' : JSON.stringify(p.value));
  const [bad, setBad] = useState<string | undefined>();
  return (
    <Textarea
      label={`${p.label} (JSON)`}
      description={p.schema.description}
      required={p.required}
      name={p.field}
      autosize
      minRows={2}
      value={text}
      error={bad ?? p.error}
      onChange={(e) => {
        const t = e.currentTarget.value;
        setText(t);
        if (!t.trim()) {
          setBad(undefined);
          return p.onChange(undefined);
        }
        try {
          p.onChange(JSON.parse(t));
          setBad(undefined);
        } catch {
          setBad('is not valid JSON');
        }
      }}
    />
  );
}
