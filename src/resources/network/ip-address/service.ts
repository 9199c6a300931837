/**
 * Allocated addresses (IPAM's ip_addresses rows), query-only: an account sees the addresses it
 * holds (the admin all), with their L3 and range. They are made and released by IPAM
 * (src/resources/ipam/) for NICs, VIPs and routers, never through this kind.
 */
import { ipAddresses as contract } from '../../../contract/network.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { KindService } from '../../service.js';

export const ipAddressSchema: KindSchema = {
  kind: 'ip-addresses',
  table: 'ipAddresses',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    l3NetworkUuid: 'uuid',
    ipRangeUuid: 'uuid',
    ip: 'string',
    ipVersion: 'int',
    usedFor: { enum: ['vm-nic', 'vip', 'router', 'dhcp'] },
    ownerUuid: 'uuid',
    vmUuid: 'uuid',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
  },
  relations: {
    l3Network: { kind: 'l3-networks', local: 'l3NetworkUuid', remote: 'uuid' },
    ipRange: { kind: 'ip-ranges', local: 'ipRangeUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

export function ipAddressService(): KindService {
  return { contract, schema: ipAddressSchema };
}
