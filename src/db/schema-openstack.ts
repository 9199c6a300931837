/** Row types of the OpenStack façade's tables (0022-openstack). */
import type { Timestamp, WithDefault } from './columns.js';

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
  userUuid: string | null;
  keyName: string | null;
  /** Nova's accessIPv4/accessIPv6: addresses the user records for the server (not assigned by Nimbus) */
  accessIpv4: string | null;
  accessIpv6: string | null;
  /** JSON text (keys kept as the user wrote them) */
  metadata: WithDefault<string>;
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
  /** JSON text (keys kept as the user wrote them) */
  properties: WithDefault<string>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface OpenstackAppCredentialTable {
  uuid: string;
  userUuid: string;
  accountUuid: string;
  name: string;
  description: string | null;
  /** scrypt hash of the secret (account/password.ts); the secret itself is shown once */
  secretHash: string;
  expiresAt: Date | null;
  unrestricted: WithDefault<boolean>;
  createdAt: Timestamp;
}
