/**
 * The demo environment `npm start` creates on an empty database: one zone, one simulator
 * cluster, four simulated hosts. Built through the same services and chains as any API call.
 */
import type { Logger } from 'pino';
import type { Db } from './db/pool.js';
import type { JobRow } from './engine/jobs.js';
import type { Caller } from './kernel/caller.js';
import { CloudError } from './kernel/errors.js';
import { newId } from './kernel/ids.js';
import type { KindService, ServiceContext } from './resources/service.js';

export const DEMO_HOSTS = 4;

export async function createDemoEnvironment(
  ctx: ServiceContext,
  services: KindService[],
  adminAccountUuid: string,
  log: Logger,
): Promise<boolean> {
  const any = await ctx.db.selectFrom('zones').select('uuid').limit(1).executeTakeFirst();
  if (any) return false;
  const caller: Caller = {
    accountUuid: adminAccountUuid,
    userUuid: await adminUser(ctx.db, adminAccountUuid),
    isAdmin: true,
    requestId: `demo-${newId()}`,
  };
  const svc = (kind: string) => services.find((s) => s.contract.kind === kind)!;
  const done = async (job: Promise<JobRow>) => {
    const finished = await ctx.engine.waitFor((await job).uuid, 60_000);
    if (finished?.state !== 'Succeeded')
      throw new CloudError(
        'Internal',
        'DEMO_FAILED',
        `demo setup failed: ${JSON.stringify(finished?.error)}`,
      );
    return finished.resourceUuid!;
  };
  const zone = await done(svc('zones').create!(caller, { name: 'zone-1', description: 'demo zone' }));
  const cluster = await done(
    svc('clusters').create!(caller, {
      name: 'cluster-1',
      zoneUuid: zone,
      hypervisorType: 'simulator',
      description: 'demo cluster of simulated hosts',
    }),
  );
  await Promise.all(
    Array.from({ length: DEMO_HOSTS }, (_, i) =>
      done(
        svc('hosts').create!(caller, {
          name: `host-${i + 1}`,
          clusterUuid: cluster,
          managementIp: `192.168.100.${11 + i}`,
        }),
      ),
    ),
  );
  log.info({ zone, cluster, hosts: DEMO_HOSTS }, 'demo environment created');
  return true;
}

async function adminUser(db: Db, accountUuid: string): Promise<string> {
  const row = await db
    .selectFrom('users')
    .select('uuid')
    .where('accountUuid', '=', accountUuid)
    .orderBy('createdAt')
    .limit(1)
    .executeTakeFirstOrThrow();
  return row.uuid;
}
