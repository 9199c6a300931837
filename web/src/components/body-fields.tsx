/**
 * The inputs of a request body (or of some of its fields: a wizard's step), each with its
 * problem under it, and the alerts of the form: the API's refusal (code and message) and the
 * problems no input on screen carries (a rule between fields, a field of another step).
 */
import { Alert, List, Stack } from '@mantine/core';
import type { BodyForm } from '../api/body-form';
import { hiddenFrom } from '../api/catalog';
import { useSession } from '../api/session';
import type { Schema } from '../api/validate';
import { FieldInput } from './field-input';

/** The fields of a body a caller is shown: not those that point at what a tenant may not see. */
export function bodyFields(kind: string, schema: Schema | undefined, isAdmin: boolean): string[] {
  return Object.keys(schema?.properties ?? {}).filter(
    (f) =>
      !hiddenFrom(kind, f, isAdmin) &&
      !(!isAdmin && /^admin only/.test(schema?.properties?.[f]?.description ?? '')),
  );
}

export function BodyFields(p: {
  kind: string;
  schema: Schema | undefined;
  form: BodyForm;
  fields?: string[];
}) {
  const isAdmin = useSession()?.isAdmin ?? false;
  const shown = p.fields ?? bodyFields(p.kind, p.schema, isAdmin);
  const required = new Set(p.schema?.required ?? []);
  return (
    <Stack gap="sm">
      {shown.map((field) => {
        const s = p.schema?.properties?.[field];
        if (!s) return null;
        return (
          <FieldInput
            key={field}
            kind={p.kind}
            field={field}
            schema={s}
            required={required.has(field)}
            value={p.form.values[field]}
            onChange={(v) => p.form.set(field, v)}
            error={p.form.errorFor(field)}
          />
        );
      })}
    </Stack>
  );
}

/** `onScreen`: the fields with an input showing now; problems of others are listed here. */
export function FormAlerts({ form, onScreen }: { form: BodyForm; onScreen: string[] }) {
  const elsewhere = form.shownProblems.filter(
    (p) => !onScreen.some((f) => p.field === f || p.field.startsWith(`${f}.`)),
  );
  return (
    <>
      {form.shownProblems.length > 0 && (
        <Alert color="orange" title="Not sent: fix these first" role="alert" data-testid="form-problems">
          <List size="sm">
            {(elsewhere.length ? elsewhere : form.shownProblems).map((p) => (
              <List.Item key={`${p.field}:${p.problem}`}>
                {p.field === 'body' ? p.problem : `${p.field}: ${p.problem}`}
              </List.Item>
            ))}
          </List>
        </Alert>
      )}
      {form.apiError && (
        <Alert color="red" title={form.apiError.code} role="alert" data-testid="api-error">
          {form.apiError.message}
        </Alert>
      )}
    </>
  );
}
