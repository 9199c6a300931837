/** Transaction helper: one short transaction, never spanning a call to a host or another node. */
import type { Transaction } from 'kysely';
import type { Db } from './pool.js';
import type { Database } from './schema.js';

export type Tx = Transaction<Database>;
/** Code that may run inside or outside a transaction takes an Executor. */
export type Executor = Db | Tx;

export function inTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction().execute(fn);
}
