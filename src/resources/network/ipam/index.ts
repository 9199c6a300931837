/**
 * IP address management (docs/network.md "IPAM"): allocateIp / releaseIps / ipCapacity over the
 * ip_addresses table, and the pure candidate math they share with the L3 and IP range kinds.
 */
export { type AllocatedIp, allocateIp, type IpRequest, ipCapacity, releaseIps } from './allocate.js';
export {
  allocatableSpans,
  gatewayValues,
  placeStatic,
  type RangeInfo,
  randomCandidates,
  type Span,
  spansSize,
} from './candidates.js';
