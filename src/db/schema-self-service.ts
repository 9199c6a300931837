/** Row types of the self-service tables (migration 0010-self-service). */
import type { ColumnType } from 'kysely';
import type { Timestamp, WithDefault } from './columns.js';
import type { LeaseHealthColumns, PoolSizingColumns } from './schema-pool-health.js';

type JsonList = ColumnType<string[], string, string>;

export interface PoolTable extends PoolSizingColumns {
  uuid: string;
  name: string;
  description: string | null;
  accountUuid: string;
  state: WithDefault<'Enabled' | 'Disabled'>;
  imageUuid: string;
  instanceOfferingUuid: string;
  l3NetworkUuids: JsonList;
  securityGroupUuids: WithDefault<string[]> | JsonList;
  userData: string | null;
  warmTarget: number;
  cap: number;
  defaultLeaseSeconds: number;
  maxLeaseSeconds: number;
  maxRenewals: number;
  perUserLimit: number;
  shared: WithDefault<boolean>;
  emptyPolicy: WithDefault<'fail' | 'wait'>;
  waitSeconds: WithDefault<number>;
  /** a public L3: each handed-out VM gets an EIP from it (0017) */
  floatingL3NetworkUuid: WithDefault<string | null>;
  /** the guest user a hand-out's login is made for (0017) */
  loginUser: WithDefault<string>;
  createdAt: WithDefault<Date>;
  updatedAt: WithDefault<Date>;
}

export interface PoolWithStockView extends PoolTable {
  ready: number;
  provisioning: number;
  allocated: number;
  effectiveCap: number;
  effectiveWarmTarget: number;
}

export type PoolVmState = 'Provisioning' | 'Ready' | 'Allocated' | 'Discarding';

export interface PoolVmTable {
  vmUuid: string;
  poolUuid: string;
  state: PoolVmState;
  createdAt: WithDefault<Date>;
  readyAt: Date | null;
}

export type LeaseState = 'Pending' | 'Active' | 'Stopped' | 'Ended';

export interface LeaseTable extends LeaseHealthColumns {
  uuid: string;
  name: string;
  description: string | null;
  accountUuid: string;
  userUuid: string;
  poolUuid: string;
  vmUuid: string | null;
  ips: WithDefault<string[]> | JsonList;
  importance: 'normal' | 'high';
  state: LeaseState;
  expiresAt: Timestamp;
  deleteAfter: Date | null;
  notifiedAt: Date | null;
  renewals: WithDefault<number>;
  endedAt: Date | null;
  endReason: string | null;
  /** the floating IP made for this lease, released when it ends (0017) */
  eipUuid: WithDefault<string | null>;
  vipUuid: WithDefault<string | null>;
  floatingIp: WithDefault<string | null>;
  /** the login asked for at allocation, and whether it reached the guest (0017) */
  loginMethod: WithDefault<'ssh-key' | 'password' | null>;
  loginUser: WithDefault<string | null>;
  loginState: WithDefault<'Delivering' | 'Delivered' | 'Failed' | null>;
  createdAt: WithDefault<Date>;
  updatedAt: WithDefault<Date>;
}
