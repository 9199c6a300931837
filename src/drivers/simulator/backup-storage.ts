/**
 * Simulated backup storage: answers the backup-storage commands in-process. Its "physical" world
 * (capacity, the images it holds) lives in `simulator_backup_storages` and
 * `simulator_backup_storage_images`, apart from the platform's records, so it survives a restart
 * like a real storage and a test can check that a rolled-back download left nothing on it.
 * Latency and failures come from the FaultRegistry (points `command:bs.<name>`, optionally only
 * for one storage: the fault's `host` is the storage URL) plus a base latency.
 *
 * A "download" takes no time and reads nothing: the image's size comes from its URL —
 * `?size=<bytes>` (virtual size) and `?actualSize=<bytes>` (bytes stored, default = size) — or,
 * without them, a deterministic plausible size derived from the URL (256 MiB – 4 GiB).
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { BackupStorageCommand } from '../../contract/agent.js';
import type { Db } from '../../db/pool.js';
import type { Executor } from '../../db/transaction.js';
import type { FaultRegistry } from '../../engine/faults.js';
import { CloudError } from '../../kernel/errors.js';
import type { BackupStorageAddress, BackupStorageDriver, BsRequest, BsResponse } from '../backup-storage.js';

export const DEFAULT_SIMULATED_BS_CAPACITY = 1024 ** 4;

const MiB = 1024 ** 2;

export interface SimulatedBackupStorageOptions {
  db: Db;
  faults: FaultRegistry;
  /** base latency of every command, in milliseconds */
  latencyMs?: number;
}

/** The sizes a simulated download reports for a URL: explicit in its query, else derived from it. */
export function simulatedImageSize(url: string): { size: number; actualSize: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CloudError('Invalid', 'IMAGE_URL_INVALID', `cannot download ${url}: not a URL`, {
      details: { url },
    });
  }
  const param = (name: string): number | undefined => {
    const raw = parsed.searchParams.get(name);
    if (raw === null) return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new CloudError('Invalid', 'IMAGE_URL_INVALID', `${name} in ${url} must be a positive integer`, {
        details: { url, [name]: raw },
      });
    }
    return n;
  };
  const size = param('size');
  const actual = param('actualSize');
  if (size !== undefined || actual !== undefined) {
    const s = size ?? actual!;
    return { size: Math.max(s, actual ?? 0), actualSize: actual ?? s };
  }
  // first 4 bytes of the URL's hash pick 256 MiB – 4 GiB in whole MiB: same URL, same size
  const h = createHash('sha256').update(url).digest().readUInt32BE(0);
  const derived = (256 + (h % (4096 - 256 + 1))) * MiB;
  return { size: derived, actualSize: derived };
}

export class SimulatedBackupStorage implements BackupStorageDriver {
  constructor(private readonly o: SimulatedBackupStorageOptions) {}

  async provision(bs: BackupStorageAddress, opts: { capacity?: number }): Promise<void> {
    await this.o.db
      .insertInto('simulatorBackupStorages')
      .values({ url: bs.url, capacity: opts.capacity ?? DEFAULT_SIMULATED_BS_CAPACITY })
      .onConflict((oc) =>
        opts.capacity
          ? oc.column('url').doUpdateSet({ capacity: opts.capacity })
          : oc.column('url').doNothing(),
      )
      .execute();
  }

  async send<C extends BackupStorageCommand>(
    bs: BackupStorageAddress,
    command: C,
    request: BsRequest<C>,
  ): Promise<BsResponse<C>> {
    if (this.o.latencyMs) await new Promise((r) => setTimeout(r, this.o.latencyMs));
    await this.o.faults.check(`command:${command}`, bs.url);
    const storage = await this.storage(bs.url);
    // each branch answers its own command; the map from command to answer is the contract's
    switch (command) {
      case 'bs.connect':
        return (await this.connect(storage)) as BsResponse<C>;
      case 'bs.download-image':
        return (await this.download(storage, request as BsRequest<'bs.download-image'>)) as BsResponse<C>;
      case 'bs.delete-image':
        await this.o.db
          .deleteFrom('simulatorBackupStorageImages')
          .where('url', '=', storage.url)
          .where('imageUuid', '=', (request as BsRequest<'bs.delete-image'>).imageUuid)
          .execute();
        return {} as BsResponse<C>;
      default:
        throw new CloudError(
          'Invalid',
          'COMMAND_UNKNOWN',
          `simulated backup storage: unknown command ${command}`,
        );
    }
  }

  private async used(url: string, exec: Executor = this.o.db): Promise<number> {
    const row = await exec
      .selectFrom('simulatorBackupStorageImages')
      .select(sql<string | number>`coalesce(sum(size), 0)`.as('used'))
      .where('url', '=', url)
      .executeTakeFirstOrThrow();
    return Number(row.used);
  }

  private async connect(storage: { url: string; capacity: number }): Promise<BsResponse<'bs.connect'>> {
    return {
      capacityTotal: storage.capacity,
      capacityAvailable: storage.capacity - (await this.used(storage.url)),
    };
  }

  private async download(
    storage: { url: string; capacity: number },
    request: BsRequest<'bs.download-image'>,
  ): Promise<BsResponse<'bs.download-image'>> {
    const sizes = simulatedImageSize(request.url);
    // the storage row is locked while the image is checked and stored, so concurrent downloads
    // cannot overfill it; an image already there is an idempotent success
    const stored = await this.o.db.transaction().execute(async (tx) => {
      await tx
        .selectFrom('simulatorBackupStorages')
        .select('url')
        .where('url', '=', storage.url)
        .forUpdate()
        .execute();
      const present = await tx
        .selectFrom('simulatorBackupStorageImages')
        .select('imageUuid')
        .where('url', '=', storage.url)
        .where('imageUuid', '=', request.imageUuid)
        .executeTakeFirst();
      if (present) return true;
      const used = await this.used(storage.url, tx);
      if (used + sizes.actualSize > storage.capacity) return false;
      await tx
        .insertInto('simulatorBackupStorageImages')
        .values({ url: storage.url, imageUuid: request.imageUuid, size: sizes.actualSize })
        .execute();
      return true;
    });
    if (!stored) {
      throw new CloudError(
        'Conflict',
        'BACKUP_STORAGE_FULL',
        `backup storage ${storage.url} has no room for ${request.url}`,
        {
          details: { needed: sizes.actualSize, available: storage.capacity - (await this.used(storage.url)) },
        },
      );
    }
    return sizes;
  }

  private async storage(url: string): Promise<{ url: string; capacity: number }> {
    const row = await this.o.db
      .selectFrom('simulatorBackupStorages')
      .select(['url', 'capacity'])
      .where('url', '=', url)
      .executeTakeFirst();
    if (!row) {
      throw new CloudError(
        'Unavailable',
        'BACKUP_STORAGE_UNREACHABLE',
        `no simulated backup storage answers at ${url}`,
        {
          details: { url },
          retryable: true,
        },
      );
    }
    return row;
  }
}
