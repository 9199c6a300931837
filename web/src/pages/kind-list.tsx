/**
 * The list page of any kind: the contract's columns, the query language as a filter box (each
 * whitespace-separated word is one `q=` condition; a word without an operator searches names),
 * sort by a column header, pages of 50. Filter, sort and page live in the URL.
 */
import {
  Alert,
  Anchor,
  Button,
  Checkbox,
  Group,
  Pagination,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
  UnstyledButton,
} from '@mantine/core';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { hiddenFrom, kindOf, queryInfo, title, visibleKinds } from '../api/catalog';
import { ApiError, get, type ListPage, listPath } from '../api/client';
import { useNames } from '../api/names';
import { useSession } from '../api/session';
import type { Resource } from '../api/types';
import { BulkActions, bulkActions } from '../components/bulk-actions';
import { ColumnPicker } from '../components/column-picker';
import { referencedUuids, Value } from '../components/value';
import { NotFoundPage } from './not-found';

const PAGE = 50;
const OPERATOR = /(!?=|[<>]=?|!?~=|!?\?=)/;

/** `state=Running web` → [`state=Running`, `name~=%web%`] */
export function conditions(filter: string, hasName: boolean): string[] {
  return filter
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => (OPERATOR.test(w) || !hasName ? w : `name~=%${w}%`));
}

export function KindListPage() {
  const { kind = '' } = useParams();
  const session = useSession();
  const k = kindOf(kind);
  const info = queryInfo(kind);
  const [params, setParams] = useSearchParams();
  const filter = params.get('q') ?? '';
  const sort = params.get('sort') ?? '';
  const page = Math.max(1, Number(params.get('page') ?? '1') || 1);
  const [draft, setDraft] = useState(filter);
  useEffect(() => setDraft(filter), [filter]);

  const visible = !!k && visibleKinds(session?.isAdmin ?? false).includes(k);
  const hasName = !!info && 'name' in info.fields;
  const list = useQuery({
    queryKey: ['kind', kind, 'list', filter, sort, page],
    queryFn: () =>
      get<ListPage<Resource>>(
        listPath(kind, {
          q: conditions(filter, hasName),
          sort,
          limit: PAGE,
          offset: (page - 1) * PAGE,
          count: true,
        }),
      ),
    enabled: visible,
    placeholderData: keepPreviousData,
  });
  const rows = list.data?.items ?? [];
  const isAdmin = session?.isAdmin ?? false;
  // every field of the resource a caller may see can be a column; the contract's are the default
  const pickable = Object.keys(k?.resource.properties ?? {}).filter((f) => !hiddenFrom(kind, f, isAdmin));
  const chosen = params
    .get('cols')
    ?.split(',')
    .filter((c) => pickable.includes(c));
  // names, not uuids: the uuid column gives way to a linked name where the kind has one
  const columns = (chosen?.length ? chosen : (k?.columns ?? [])).filter(
    (c) => !(c === 'uuid' && hasName && !chosen?.length) && !hiddenFrom(kind, c, isAdmin),
  );
  // rows ticked for a bulk action: a new page, filter or sort starts with nothing ticked
  const where = `${kind}|${filter}|${sort}|${page}`;
  const [ticked, setTicked] = useState({ where, rows: new Map<string, string>() });
  const picked = ticked.where === where ? ticked.rows : new Map<string, string>();
  const setPicked = (rows: Map<string, string>) => setTicked({ where, rows });
  const bulk = !!k && bulkActions(k, isAdmin).length > 0;
  const names = useNames(k ? referencedUuids(k, rows, columns) : {});
  if (!k || !visible) return <NotFoundPage what={`The page /${kind}`} />;

  const set = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [key, v] of Object.entries(changes))
      if (v) next.set(key, v);
      else next.delete(key);
    setParams(next);
  };
  const sortBy = (c: string) => set({ sort: sort === c ? `-${c}` : c, page: null });
  const total = list.data?.total ?? 0;
  // the cell that opens the row's page: its name, else its uuid, else the first column
  const shown = [
    ...(hasName && !chosen?.length ? ['name'] : []),
    ...columns.filter((c) => c !== 'name' || chosen?.length),
  ];
  const linkField = hasName ? 'name' : columns.includes('uuid') ? 'uuid' : shown[0];

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>{title(k)}</Title>
        {k.create && (session?.isAdmin || !k.adminOnly) && (
          <Button component={Link} to={`/${kind}/new`}>
            New {k.singular}
          </Button>
        )}
      </Group>
      <Text c="dimmed" size="sm">
        {k.summary}
      </Text>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: draft.trim() || null, page: null });
        }}
      >
        <TextInput
          label="Filter"
          description="Conditions like state=Running cpu>=2 name~=web% (space-separated, all must hold); a plain word searches names. Enter applies."
          placeholder={Object.keys(info?.fields ?? {})
            .slice(0, 6)
            .join(' ')}
          value={draft}
          onChange={(e) => setDraft(e.currentTarget.value)}
          name="filter"
        />
      </form>
      <ColumnPicker
        fields={pickable}
        value={shown}
        onChange={(cols) => set({ cols: cols.length ? cols.join(',') : null })}
      />
      {bulk && (
        <BulkActions
          k={k}
          picked={[...picked].map(([uuid, name]) => ({ uuid, name }))}
          onDone={() => setPicked(new Map())}
        />
      )}
      {list.error && (
        <Alert color="red" title={list.error instanceof ApiError ? list.error.code : 'error'} role="alert">
          {list.error.message}
        </Alert>
      )}
      <Table striped highlightOnHover withTableBorder data-testid="kind-list">
        <Table.Thead>
          <Table.Tr>
            {bulk && (
              <Table.Th w={36}>
                <Checkbox
                  aria-label="select every row of this page"
                  checked={rows.length > 0 && picked.size === rows.length}
                  indeterminate={picked.size > 0 && picked.size < rows.length}
                  onChange={(e) =>
                    setPicked(
                      e.currentTarget.checked
                        ? new Map(rows.map((r) => [String(r.uuid), String(r.name ?? r.uuid)]))
                        : new Map(),
                    )
                  }
                />
              </Table.Th>
            )}
            {shown.map((c) => (
              <Table.Th
                key={c}
                aria-sort={sort === c ? 'ascending' : sort === `-${c}` ? 'descending' : undefined}
              >
                {info && c in info.fields ? (
                  <UnstyledButton onClick={() => sortBy(c)} fw={600} fz="sm">
                    {c} {sort === c ? '▲' : sort === `-${c}` ? '▼' : ''}
                  </UnstyledButton>
                ) : (
                  c
                )}
              </Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((row, i) => (
            <Table.Tr key={String(row.uuid ?? row.id ?? i)}>
              {bulk && (
                <Table.Td data-cell="pick">
                  <Checkbox
                    aria-label={`select ${String(row.name ?? row.uuid)}`}
                    checked={picked.has(String(row.uuid))}
                    onChange={(e) => {
                      const next = new Map(picked);
                      if (e.currentTarget.checked) next.set(String(row.uuid), String(row.name ?? row.uuid));
                      else next.delete(String(row.uuid));
                      setPicked(next);
                    }}
                  />
                </Table.Td>
              )}
              {shown.map((c) => (
                <Table.Td key={c} data-cell={c}>
                  {c === linkField && typeof row.uuid === 'string' ? (
                    <Anchor component={Link} to={`/${kind}/${row.uuid}`}>
                      {String(row[c] ?? row.uuid)}
                    </Anchor>
                  ) : (
                    <Value k={k} field={c} value={row[c]} names={names} />
                  )}
                </Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Group justify="space-between">
        <Text size="sm" c="dimmed" data-testid="list-total">
          {list.isPending ? 'loading…' : `${total} ${total === 1 ? k.singular : k.kind}`}
        </Text>
        {total > PAGE && (
          <Pagination
            total={Math.ceil(total / PAGE)}
            value={page}
            onChange={(p) => set({ page: p === 1 ? null : String(p) })}
          />
        )}
      </Group>
    </Stack>
  );
}
