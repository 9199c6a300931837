/**
 * Rows of another kind made together with the resource (an L3 network's IP ranges, a security
 * group's rules): one form per row over that kind's create body, without the field that names
 * the parent (filled in once the parent exists). Each row checks itself as the user types; the
 * page sends them after the parent's job succeeds, and shows each row's refusal by its fields.
 */
import { Button, Card, Group, Stack, Text } from '@mantine/core';
import { type MutableRefObject, useState } from 'react';
import { type BodyForm, useBodyForm } from '../../api/body-form';
import type { Schema } from '../../api/validate';
import { BodyFields, FormAlerts } from '../../components/body-fields';
import type { Children } from './wizards';

/** The child kind's create body and rules without the parent's field. */
export function childSchema(schema: Schema, parentField: string): Schema {
  const { [parentField]: _parent, ...properties } = schema.properties ?? {};
  return { ...schema, properties, required: (schema.required ?? []).filter((r) => r !== parentField) };
}

export type RowForms = MutableRefObject<Map<number, BodyForm>>;

export function ChildRows(p: {
  spec: Children;
  schema: Schema;
  rules: Schema | undefined;
  singular: string;
  forms: RowForms;
  locked: boolean;
}) {
  const [ids, setIds] = useState<number[]>([]);
  const [next, setNext] = useState(1);
  return (
    <Stack gap="sm" data-testid={`children-${p.spec.kind}`}>
      {ids.map((id, i) => (
        <ChildRow
          key={id}
          id={id}
          index={i}
          {...p}
          onRemove={() => {
            p.forms.current.delete(id);
            setIds(ids.filter((x) => x !== id));
          }}
        />
      ))}
      {!p.locked && (
        <Group>
          <Button
            variant="light"
            size="xs"
            onClick={() => {
              setIds([...ids, next]);
              setNext(next + 1);
            }}
          >
            {p.spec.add}
          </Button>
        </Group>
      )}
    </Stack>
  );
}

function ChildRow(p: {
  id: number;
  index: number;
  spec: Children;
  schema: Schema;
  rules: Schema | undefined;
  singular: string;
  forms: RowForms;
  locked: boolean;
  onRemove: () => void;
}) {
  const form = useBodyForm(p.schema, p.rules);
  // the page reads every row's form when it sends them
  p.forms.current.set(p.id, form);
  return (
    <Card withBorder role="group" aria-label={`${p.singular} ${p.index + 1}`}>
      <Group justify="space-between" mb="xs">
        <Text fw={600} size="sm">
          {p.singular} {p.index + 1}
        </Text>
        {!p.locked && (
          <Button variant="subtle" color="red" size="xs" onClick={p.onRemove}>
            Remove
          </Button>
        )}
      </Group>
      <BodyFields kind={p.spec.kind} schema={p.schema} form={form} />
      <FormAlerts form={form} onScreen={Object.keys(p.schema.properties ?? {})} />
    </Card>
  );
}
