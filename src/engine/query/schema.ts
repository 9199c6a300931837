/**
 * What the query language needs to know about a kind: its table, its queryable fields with
 * their types, and its relations to other kinds (for nested conditions like
 * `cluster.zone.name=z1`). Every collection endpoint is served from one of these.
 */
import type { Database } from '../../db/schema.js';

export type FieldType =
  | 'string'
  | 'uuid'
  | 'int'
  | 'number'
  | 'boolean'
  | 'timestamp'
  /** a string limited to the listed values */
  | { enum: readonly string[] };

export interface Relation {
  /** the related kind's `kind` (e.g. 'clusters') */
  kind: string;
  /** column of this kind's table (camelCase, e.g. 'clusterUuid') */
  local: string;
  /** column of the related kind's table (e.g. 'uuid') */
  remote: string;
  /** true when many related rows may match one row (zone.clusters) */
  many?: boolean;
}

/**
 * Who sees which rows:
 * - 'owned': a non-admin caller sees only rows whose accountUuid is its own;
 * - 'shared': every caller sees every row (read-only for non-admins);
 * - 'admin': only the admin account sees rows at all.
 */
export type Visibility = 'owned' | 'shared' | 'admin';

export interface KindSchema {
  kind: string;
  table: keyof Database & string;
  /** API field name → type. The column is the same camelCase name. */
  fields: Record<string, FieldType>;
  relations?: Record<string, Relation>;
  /** rows carry user tags: `q=tag=env=prod` works */
  taggable?: boolean;
  visibility: Visibility;
  /** primary key column (default 'uuid'); also the final tie-breaker of every sort */
  key?: string;
  /** columns returned with every row but not queryable (JSON documents such as a job's result) */
  selectOnly?: string[];
  /** default sort when none is given (default: key ascending) */
  defaultSort?: string;
  /**
   * 'owned' kinds only: a boolean column that makes a row visible to every account (public
   * images). A non-admin then sees `accountUuid = me OR <publicColumn> = true`, in lists, in
   * nested conditions and for one row alike. Seeing a row is not owning it: changes stay with
   * the owner (each service checks).
   */
  publicColumn?: string;
}

export interface KindRegistry {
  get(kind: string): KindSchema | undefined;
}

export function createRegistry(schemas: KindSchema[]): KindRegistry & { all(): KindSchema[] } {
  const map = new Map(schemas.map((s) => [s.kind, s]));
  return { get: (k) => map.get(k), all: () => [...map.values()] };
}
