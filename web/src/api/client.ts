/**
 * The console's HTTP client: bearer token from the session, errors in the API's one shape
 * (ApiError keeps code, reason and details, so a page can show the field a 400 names), and a 401
 * anywhere ends the session and sends the user to the login page with the page remembered.
 */
import type { Static } from 'typebox';
import type { ErrorBody, Job, Page } from '../../../src/contract/common.js';
import { getSession, setSession } from './session';

type WireError = Static<typeof ErrorBody>['error'];

export type { Job };
/** A list page of the API (`GET /v1/<kind>`), with items of type T. */
export type ListPage<T> = Omit<Static<ReturnType<typeof Page>>, 'items'> & { items: T[] };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly reason: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

let unauthenticated: () => void = () => {};
/** What a 401 does (the router registers: go to /login?next=<this page>). */
export function onUnauthenticated(handler: () => void): void {
  unauthenticated = handler;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const token = getSession()?.token;
  const res = await fetch(path, {
    method,
    headers: {
      accept: 'application/json',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (res.ok) return parsed as T;
  const e = (parsed as { error?: WireError } | undefined)?.error;
  const err = new ApiError(
    res.status,
    e?.code ?? `HTTP_${res.status}`,
    e?.reason ?? 'Internal',
    e?.message ?? `${method} ${path}: HTTP ${res.status}`,
    (e?.details as Record<string, unknown> | undefined) ?? {},
  );
  // an expired or revoked token (not a failed login, which has no session yet)
  if (res.status === 401 && token) handleUnauthenticated();
  throw err;
}

/** The session is over (expired, revoked): forget it and go to the login page. */
export function handleUnauthenticated(): void {
  setSession(null);
  unauthenticated();
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => request<T>('POST', path, body);

/** `q=` conditions, sort, paging and fields as the list API takes them. */
export function listPath(
  kind: string,
  opts: { q?: string[]; sort?: string; limit?: number; offset?: number; count?: boolean; fields?: string[] },
): string {
  const p = new URLSearchParams();
  for (const c of opts.q ?? []) if (c.trim()) p.append('q', c.trim());
  if (opts.sort) p.set('sort', opts.sort);
  if (opts.limit !== undefined) p.set('limit', String(opts.limit));
  if (opts.offset) p.set('offset', String(opts.offset));
  if (opts.count) p.set('count', 'true');
  if (opts.fields) p.set('fields', opts.fields.join(','));
  const qs = p.toString();
  return `/v1/${kind}${qs ? `?${qs}` : ''}`;
}
