/**
 * The ordered, forward-only list of migrations. Never edit a migration that has shipped;
 * add a new file and list it here. Names sort in the order they run.
 */
import type { Migration } from 'kysely';
import * as m0001 from './0001-foundation.js';
import * as m0002 from './0002-compute-storage.js';
import * as m0003storage from './0003-storage.js';
import * as m0004 from './0004-volumes.js';
import * as m0005 from './0005-compute.js';
import * as m0006 from './0006-network.js';
import * as m0007 from './0007-ipam.js';
import * as m0008 from './0008-routers.js';
import * as m0009 from './0009-agent-hosts.js';
import * as m0010 from './0010-self-service.js';
import * as m0011 from './0011-transitional-owners.js';
import * as m0012 from './0012-pool-sizing-health.js';
import * as m0013 from './0013-webhooks.js';
import * as m0016 from './0016-console.js';
import * as m0017 from './0017-pool-login.js';
import * as m0018 from './0018-cluster.js';
import * as m0019 from './0019-host-ha.js';
import * as m0020 from './0020-webhook-outbox-guard.js';
import * as m0021 from './0021-vm-list-indexes.js';
import * as m0022 from './0022-openstack.js';
import * as m0023 from './0023-openstack-routers.js';
import * as m0024 from './0024-vm-user-data.js';

export const MIGRATIONS: Record<string, Migration> = {
  '0001-foundation': m0001,
  '0002-compute-storage': m0002,
  '0003-storage': m0003storage,
  '0004-volumes': m0004,
  '0005-compute': m0005,
  '0006-network': m0006,
  '0007-ipam': m0007,
  '0008-routers': m0008,
  '0009-agent-hosts': m0009,
  '0010-self-service': m0010,
  '0011-transitional-owners': m0011,
  '0012-pool-sizing-health': m0012,
  '0013-webhooks': m0013,
  '0016-console': m0016,
  '0017-pool-login': m0017,
  '0018-cluster': m0018,
  '0019-host-ha': m0019,
  '0020-webhook-outbox-guard': m0020,
  '0021-vm-list-indexes': m0021,
  '0022-openstack': m0022,
  '0023-openstack-routers': m0023,
  '0024-vm-user-data': m0024,
};
