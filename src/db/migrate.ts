/**
 * Runs pending migrations at start-up. Kysely's Migrator runs them all in one transaction
 * under a PostgreSQL advisory lock, so two nodes starting together never both migrate:
 * the second waits, then finds nothing left to do.
 */
import { type Kysely, type MigrationProvider, Migrator } from 'kysely';
import { CloudError } from '../kernel/errors.js';
import { MIGRATIONS } from './migrations/index.js';

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

// biome-ignore lint/suspicious/noExplicitAny: migrations work below the typed schema
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: 'schema_migrations',
    migrationLockTableName: 'schema_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    throw new CloudError(
      'Internal',
      'DB_MIGRATION_FAILED',
      `database migration failed: ${String((error as Error).message ?? error)}`,
      {
        cause: error,
      },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
