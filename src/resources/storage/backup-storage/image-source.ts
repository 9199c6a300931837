/**
 * Where a host copies an image from (image.cache). A simulated backup storage holds no bytes, so
 * the host is given the image's original URL; an `agent` backup storage (a nimbus-agent with a
 * backup-storage directory) holds the file, so the host fetches it from that agent's
 * `GET /v1/images/<uuid>` with the storage's bearer secret as its credential. The credential goes
 * only into the command's `authorization` field: never into job params, events or logs.
 */
import type { Db } from '../../../db/pool.js';

export interface ImageSource {
  url: string;
  /** the Authorization header value the host sends to `url` */
  authorization?: string;
}

export async function imageSourceOf(db: Db, image: { uuid: string; url: string }): Promise<ImageSource> {
  const bs = await db
    .selectFrom('images as i')
    .innerJoin('backupStorages as b', 'b.uuid', 'i.backupStorageUuid')
    .leftJoin('backupStorageSecrets as s', 's.backupStorageUuid', 'b.uuid')
    .select(['b.type', 'b.url', 's.secret'])
    .where('i.uuid', '=', image.uuid)
    .executeTakeFirst();
  if (bs?.type !== 'agent') return { url: image.url };
  return {
    url: `${bs.url.replace(/\/+$/, '')}/v1/images/${encodeURIComponent(image.uuid)}`,
    ...(bs.secret ? { authorization: `Bearer ${bs.secret}` } : {}),
  };
}

/** The Authorization header value a host sends to a backup storage (image.upload); none for simulated ones. */
export async function backupStorageAuthorization(
  db: Db,
  backupStorageUuid: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('backupStorageSecrets')
    .select('secret')
    .where('backupStorageUuid', '=', backupStorageUuid)
    .executeTakeFirst();
  return row ? `Bearer ${row.secret}` : undefined;
}
