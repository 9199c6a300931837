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

/** `GET /v1/cluster/status` (admin): the nodes, the database they share, and who owns what. */
export const ClusterStatus = Type.Object({
  nodes: Type.Array(ManagementNode, {
    description: 'nodes not stopped, and those stopped within the last hour (oldest first)',
  }),
  database: Type.Object({
    serverVersion: Type.String(),
    role: Type.Enum(['primary', 'standby'] as const, { description: 'standby when pg_is_in_recovery()' }),
    sizeBytes: Type.Integer({ description: 'pg_database_size of the nodes database' }),
    replayLagSeconds: Nullable(
      Type.Number({ description: 'on a standby: now() - the last replayed transaction; null on a primary' }),
    ),
    replicas: Type.Array(
      Type.Object({
        name: Type.String({ description: 'application_name of the standby' }),
        address: Nullable(Type.String()),
        state: Type.String(),
        replayLagSeconds: Nullable(Type.Number()),
      }),
      { description: 'standbys streaming from this primary (pg_stat_replication)' },
    ),
  }),
  ownership: Type.Array(
    Type.Object({
      node: Type.String({ description: 'node name' }),
      nodeUuid: Uuid,
      hosts: Type.Array(Type.String(), { description: 'names of the hosts this node reconciles' }),
    }),
    { description: 'hosts per live node (rendezvous ownership, docs/cluster.md)' },
  ),
});
