/** Row types of the OpenStack façade's tables (0022-openstack). */
import type { JsonWithDefault, Timestamp, WithDefault } from './columns.js';

export interface OpenstackKeypairTable {
  userUuid: string;
  name: string;
  accountUuid: string;
  type: WithDefault<'ssh' | 'x509'>;
  publicKey: string;
  fingerprint: string;
  createdAt: Timestamp;
}

export interface OpenstackServerTable {
  vmUuid: string;
  keyName: string | null;
  metadata: JsonWithDefault<Record<string, string>>;
}

export interface OpenstackImageTable {
  uuid: string;
  accountUuid: string;
  name: string;
  diskFormat: string | null;
  containerFormat: string | null;
  visibility: WithDefault<'public' | 'private' | 'shared' | 'community'>;
  minDisk: WithDefault<number>;
  minRam: WithDefault<number>;
  protected: WithDefault<boolean>;
  properties: JsonWithDefault<Record<string, unknown>>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}
