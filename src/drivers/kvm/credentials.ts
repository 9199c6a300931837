/**
 * Where an agent is and what secret it wants: a host's management IP and `agent_port` (default
 * 7070) with its row in `host_secrets`; a backup storage's URL with its row in
 * `backup_storage_secrets`. Read from the database and kept for a short while (every command
 * needs them; a secret changes only when an operator re-adds the host). A refused secret drops
 * the cached entry (the driver calls `forget`), so a corrected secret is used at once.
 */
import { DEFAULT_AGENT_PORT } from '../../contract/foundation.js';
import type { Db } from '../../db/pool.js';
import { CloudError } from '../../kernel/errors.js';
import type { AgentEndpoint } from './agent-client.js';

const CACHE_MS = 30_000;

export interface AgentCredentials {
  hostEndpoint(host: { uuid: string; managementIp: string }): Promise<AgentEndpoint>;
  backupStorageEndpoint(bs: { uuid: string; url: string }): Promise<AgentEndpoint>;
  /** the agent of the kvm host with this management IP (a migration's target) */
  hostEndpointByIp(managementIp: string): Promise<AgentEndpoint>;
  forget(uuid: string): void;
}

/** `http://<ip>:<port>`, with IPv6 addresses bracketed. */
export function agentBaseUrl(ip: string, port: number | null | undefined): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `http://${host}:${port ?? DEFAULT_AGENT_PORT}`;
}

export class DbAgentCredentials implements AgentCredentials {
  private readonly cache = new Map<string, { endpoint: AgentEndpoint; at: number }>();

  constructor(private readonly db: Db) {}

  forget(uuid: string): void {
    this.cache.delete(uuid);
  }

  private cached(uuid: string): AgentEndpoint | undefined {
    const hit = this.cache.get(uuid);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.endpoint;
    this.cache.delete(uuid);
    return undefined;
  }

  async hostEndpoint(host: { uuid: string; managementIp: string }): Promise<AgentEndpoint> {
    const hit = this.cached(host.uuid);
    if (hit) return hit;
    const row = await this.db
      .selectFrom('hosts as h')
      .leftJoin('hostSecrets as s', 's.hostUuid', 'h.uuid')
      .select(['h.managementIp', 'h.agentPort', 's.secret'])
      .where('h.uuid', '=', host.uuid)
      .executeTakeFirst();
    if (!row?.secret) {
      throw new CloudError('Invalid', 'HOST_SECRET_MISSING', `host ${host.uuid} has no agent secret`, {
        details: { hostUuid: host.uuid },
      });
    }
    const endpoint = { baseUrl: agentBaseUrl(row.managementIp, row.agentPort), secret: row.secret };
    this.cache.set(host.uuid, { endpoint, at: Date.now() });
    return endpoint;
  }

  async hostEndpointByIp(managementIp: string): Promise<AgentEndpoint> {
    const row = await this.db
      .selectFrom('hosts')
      .select(['uuid', 'managementIp'])
      .where('managementIp', '=', managementIp)
      .executeTakeFirst();
    if (!row) {
      throw new CloudError('NotFound', 'HOST_NOT_FOUND', `no host has management IP ${managementIp}`, {
        details: { managementIp },
      });
    }
    return this.hostEndpoint(row);
  }

  async backupStorageEndpoint(bs: { uuid: string; url: string }): Promise<AgentEndpoint> {
    const hit = this.cached(bs.uuid);
    if (hit) return hit;
    const row = await this.db
      .selectFrom('backupStorageSecrets')
      .select('secret')
      .where('backupStorageUuid', '=', bs.uuid)
      .executeTakeFirst();
    if (!row) {
      throw new CloudError(
        'Invalid',
        'BACKUP_STORAGE_SECRET_MISSING',
        `backup storage ${bs.uuid} has no agent secret`,
        { details: { backupStorageUuid: bs.uuid } },
      );
    }
    const endpoint = { baseUrl: bs.url.replace(/\/+$/, ''), secret: row.secret };
    this.cache.set(bs.uuid, { endpoint, at: Date.now() });
    return endpoint;
  }
}
