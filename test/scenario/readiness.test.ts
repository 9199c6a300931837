/**
 * Liveness and readiness (issue 8, docs/api.md "Health and readiness"): /v1/health answers while
 * the process and its database do; /v1/ready only once the node is migrated, recovered, its demo
 * environment created when one was asked for, and not draining. A stopping node is not ready
 * from the first moment of its stop, answers /v1/ready with 503 `draining` while its jobs drain,
 * and refuses new mutating requests (503 NODE_DRAINING) meanwhile.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { createDemoEnvironment } from '../../src/demo.js';
import { DEFAULT_DB_POOL_SIZE, startNode } from '../../src/node.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_PASSWORD, Api } from '../support/node.js';

const dirs: string[] = [];
const databases: TestDatabase[] = [];
after(async () => {
  for (const d of databases) await d.drop().catch(() => {});
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function probe(url: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('ready only after the demo exists; not ready, and refusing new work, while draining', async () => {
  const db = await createTestDatabase({ max: 2 });
  databases.push(db);
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-ready-'));
  dirs.push(dir);
  const node = await startNode({
    databaseUrl: db.url,
    dataDir: dir,
    host: '127.0.0.1',
    port: 0,
    adminPassword: ADMIN_PASSWORD,
    log: pino({ level: 'silent' }),
    nodeName: `ready-${Math.random().toString(36).slice(2)}`,
    heartbeatMs: 500,
    demo: true,
  });
  let stopped = false;
  try {
    // alive, not ready: the demo the caller asked for does not exist yet
    const health = await probe(node.url, '/v1/health');
    assert.equal(health.status, 200, JSON.stringify(health.body));
    assert.equal(health.body.database, 'ok');
    const before = await probe(node.url, '/v1/ready');
    assert.equal(before.status, 503, JSON.stringify(before.body));
    assert.deepEqual(before.body.reasons, ['creating-demo']);
    assert.equal(before.body.ready, false);
    // warmed before it reported anything but the demo: every connection of its pool is open
    assert.equal(node.db.pool.totalCount, DEFAULT_DB_POOL_SIZE);

    const admin = await node.services.db
      .selectFrom('accounts')
      .select('uuid')
      .where('name', '=', 'admin')
      .executeTakeFirstOrThrow();
    assert.equal(
      await createDemoEnvironment(node.services, node.kindServices, admin.uuid, pino({ level: 'silent' })),
      true,
    );
    // still not ready until the caller says the demo is done (main.ts does so after creating it)
    assert.equal((await probe(node.url, '/v1/ready')).status, 503);
    node.demoCreated();
    const ready = await probe(node.url, '/v1/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.deepEqual(ready.body.reasons, []);
    assert.equal(ready.body.ready, true);

    // a job that outlasts the drain's start keeps the node draining (with its HTTP server up)
    const api = await new Api(node.url).login('admin', ADMIN_PASSWORD);
    const fault = await api.post('/v1/simulator/faults', { point: 'step:zone.update/apply', delayMs: 3000 });
    assert.equal(fault.status, 201, JSON.stringify(fault.body));
    const zones = await api.get('/v1/zones?q=name=zone-1');
    assert.equal(zones.status, 200, JSON.stringify(zones.body));
    const slow = await api.patch(`/v1/zones/${zones.body.items[0].uuid}`, { description: 'slow' });
    assert.equal(slow.status, 202, JSON.stringify(slow.body));
    for (let i = 0; i < 100; i++) {
      const job = await db.db
        .selectFrom('jobs')
        .select('state')
        .where('uuid', '=', slow.body.uuid)
        .executeTakeFirst();
      if (job?.state === 'Running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const stopping = node.stop();
    stopped = true;
    // not ready at once: the stop marks it before anything else
    const draining = await probe(node.url, '/v1/ready');
    assert.equal(draining.status, 503, JSON.stringify(draining.body));
    assert.deepEqual(draining.body.reasons, ['draining']);
    // unhealthy for a load balancer while it drains (docs/cluster.md), and new work is sent elsewhere
    const drainingHealth = await probe(node.url, '/v1/health');
    assert.equal(drainingHealth.status, 503, JSON.stringify(drainingHealth.body));
    assert.equal(drainingHealth.body.status, 'draining');
    const refused = await api.post('/v1/zones', { name: 'too-late' });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'NODE_DRAINING');
    assert.equal(refused.headers.get('retry-after'), '5');
    await stopping;
    const zone = await db.db
      .selectFrom('jobs')
      .select(['state'])
      .where('uuid', '=', slow.body.uuid)
      .executeTakeFirstOrThrow();
    assert.equal(zone.state, 'Succeeded', 'the drain finished the job in flight');
    await assert.rejects(fetch(`${node.url}/v1/health`), 'the stopped node no longer answers');
  } finally {
    if (!stopped) await node.stop();
  }
});

test('health asks the database on a connection of its own: every connection of the main pool busy, it still answers 200 at once (503 when the database is down: db-connection-loss.test.ts)', async () => {
  const db = await createTestDatabase({ max: 2 });
  databases.push(db);
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-ready-'));
  dirs.push(dir);
  const node = await startNode({
    databaseUrl: db.url,
    dataDir: dir,
    host: '127.0.0.1',
    port: 0,
    adminPassword: ADMIN_PASSWORD,
    log: pino({ level: 'silent' }),
    nodeName: `health-${Math.random().toString(36).slice(2)}`,
    heartbeatMs: 500,
  });
  try {
    assert.equal((await probe(node.url, '/v1/ready')).status, 200, 'no demo asked: ready after the start');
    // every connection of the node's pool busy with a long statement: user work would wait
    const sleepers = Array.from({ length: 8 }, () =>
      node.db.pool.query('select pg_sleep(4)').catch(() => undefined),
    );
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const health = await probe(node.url, '/v1/health');
    assert.equal(health.status, 200, JSON.stringify(health.body));
    assert.equal(health.body.database, 'ok');
    assert.ok(Date.now() - started < 2000, 'health does not queue behind the busy pool');
    assert.equal((await probe(node.url, '/v1/ready')).status, 200);
    await Promise.all(sleepers);
  } finally {
    await node.stop();
  }
});
