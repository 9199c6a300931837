/** Wire shape of the management nodes of a cluster (docs/cluster.md): read-only, admin only. */
import { Type } from 'typebox';
import { Nullable, Timestamp, Uuid } from './common.js';
import type { KindContract } from './kind-contract.js';

export const MANAGEMENT_NODE_STATES = ['Running', 'Draining', 'Unreachable', 'Stopped', 'Fenced'] as const;

export const ManagementNode = Type.Object({
  uuid: Uuid,
  name: Type.String({ description: 'the node name (--node-name; default <hostname>:<port>)' }),
  address: Type.String({ description: 'the URL the node serves its API on' }),
  version: Type.String(),
  state: Type.Enum(MANAGEMENT_NODE_STATES, {
    description:
      'Running; Draining (stopping, finishing its jobs); Unreachable (heartbeat older than dead-after, not yet fenced); Stopped (left cleanly); Fenced (declared dead by another node, or replaced by its own restart, which took its work over)',
  }),
  startedAt: Timestamp,
  heartbeatAt: Timestamp,
  stoppedAt: Nullable(Timestamp),
  fencedBy: Nullable(Uuid),
  ownedHosts: Type.Integer({ description: 'hosts this node reconciles (rendezvous ownership)' }),
  runningJobs: Type.Integer({ description: 'jobs Running on this node' }),
});

export const managementNodes: KindContract = {
  kind: 'management-nodes',
  singular: 'management-node',
  summary: 'the management nodes of the cluster, their heartbeats and what each owns (read-only)',
  resource: ManagementNode,
  deletable: false,
  taggable: false,
  columns: ['name', 'address', 'state', 'heartbeatAt', 'ownedHosts', 'runningJobs'],
  adminOnly: true,
};
