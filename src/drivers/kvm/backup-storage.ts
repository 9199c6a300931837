/**
 * Backup storage of type `agent`: a nimbus-agent started with a backup-storage directory
 * (`--backup-storage-dir`), holding image files and serving them at `GET /v1/images/<uuid>`.
 * Its `url` is the agent's base address (http://<ip>:<port>); its secret is kept in
 * `backup_storage_secrets`. The bs.* commands go to `POST /v1/commands/bs.*` like host commands.
 * Hosts copy images from it directly (image.cache with `imageSourceOf`'s URL and credential).
 */
import type { BackupStorageCommand } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { BackupStorageAddress, BackupStorageDriver, BsRequest, BsResponse } from '../backup-storage.js';
import type { AgentClient } from './agent-client.js';
import type { AgentCredentials } from './credentials.js';
import { commandTimeoutMs } from './timeouts.js';

export class AgentBackupStorage implements BackupStorageDriver {
  constructor(
    private readonly client: AgentClient,
    private readonly credentials: AgentCredentials,
  ) {}

  async send<C extends BackupStorageCommand>(
    bs: BackupStorageAddress,
    command: C,
    request: BsRequest<C>,
  ): Promise<BsResponse<C>> {
    const endpoint = await this.credentials.backupStorageEndpoint(bs);
    try {
      return (await this.client.command(endpoint, command, request, {
        timeoutMs: commandTimeoutMs(command),
      })) as BsResponse<C>;
    } catch (err) {
      if (err instanceof CloudError && err.code === 'HOST_AGENT_SECRET_REJECTED')
        this.credentials.forget(bs.uuid);
      throw err;
    }
  }
}

/** Where a host fetches an image held by an agent backup storage, and how it authenticates. */
export async function agentImageSource(
  credentials: AgentCredentials,
  bs: { uuid: string; url: string },
  imageUuid: string,
): Promise<{ url: string; authorization: string }> {
  const endpoint = await credentials.backupStorageEndpoint(bs);
  return {
    url: `${endpoint.baseUrl}/v1/images/${encodeURIComponent(imageUuid)}`,
    authorization: `Bearer ${endpoint.secret}`,
  };
}
