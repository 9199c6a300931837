/**
 * Column types shared by every table's row type (schema.ts, schema-network.ts): a file of its own
 * so the two schema files need not import each other.
 */
import type { ColumnType } from 'kysely';

export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
export type Json<T = unknown> = ColumnType<T, T | string, T | string>;
/** a column with a database default: optional on insert */
export type WithDefault<T> = ColumnType<T, T | undefined, T>;
/** a JSON column with a database default: optional on insert */
export type JsonWithDefault<T = unknown> = ColumnType<T, T | string | undefined, T | string>;

export interface Resource {
  uuid: string;
  name: string;
  description: string | null;
  accountUuid: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}
