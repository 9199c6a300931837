/**
 * `node dist/src/main.js --reset-admin-password` (or `npm start -- --reset-admin-password`): the
 * way back in when the admin password is lost. NIMBUS_ADMIN_PASSWORD applies on first start only,
 * so this opens the node's database directly (the embedded one under --data-dir, which must not
 * be running, or --database-url), sets the password (NIMBUS_ADMIN_PASSWORD, or a generated one,
 * printed once), revokes the admin's sessions, and exits. It starts no management node: nothing
 * joins the cluster or takes work.
 */
import { join } from 'node:path';
import { type EmbeddedDatabase, startEmbeddedDatabase } from './db/embedded.js';
import { openDb } from './db/pool.js';
import { resetAdminPassword } from './resources/identity/account/bootstrap.js';

export async function resetAdminPasswordCommand(o: {
  dataDir: string;
  databaseUrl?: string | undefined;
  password?: string | undefined;
}): Promise<string> {
  let embedded: EmbeddedDatabase | undefined;
  let url = o.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedDatabase(join(o.dataDir));
    url = embedded.url;
  }
  const db = openDb(url, { max: 1, applicationName: 'nimbus-reset-admin-password' });
  try {
    return await resetAdminPassword(db.db, o.password);
  } finally {
    await db.close();
    await embedded?.stop();
  }
}
