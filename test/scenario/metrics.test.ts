/**
 * /metrics: passes Prometheus's naming rules (our lint always; `promtool check metrics` too when
 * promtool is installed — Debian's `prometheus` package — or PROMTOOL names it); no doubled
 * prefix; the inventory gauges equal what the database holds; the operator's token guards it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';
import { lintExposition, parseExposition, sampleValue } from '../support/prometheus-lint.js';
import { addL2, addL3 } from './network-fixtures.js';
import { buildVmEnv, ok, type VmEnv } from './vm-env.js';

const TOKEN = `metrics-${Math.random().toString(36).slice(2)}`;
let t: TestNode;
let env: VmEnv;
let l3: string;

before(async () => {
  // no inventory cache: every scrape reads the database, so the test sees its own changes
  t = await startTestNode({ settings: { metricsCacheSeconds: 0 }, metricsToken: TOKEN });
  env = await buildVmEnv(t, { hosts: 3, prefix: 'mx' });
  l3 = (await addL3(t, await addL2(t, env, 'eth0'), { first: 10, last: 59 })).l3;
  const vms = await Promise.all(
    [0, 1, 2].map((i) =>
      ok(t, 'POST', '/v1/vms', {
        name: `mx-vm-${i}`,
        imageUuid: env.image,
        instanceOfferingUuid: env.small,
        l3NetworkUuids: [l3],
      }),
    ),
  );
  await ok(t, 'POST', `/v1/vms/${vms[0].resourceUuid}/actions/stop`, {});
});
after(() => t?.stop());

async function scrape(): Promise<string> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return res.text();
}

function promtool(): string | undefined {
  const candidates = [process.env.PROMTOOL, 'promtool'].filter((c): c is string => Boolean(c));
  for (const c of candidates) if (spawnSync(c, ['--version']).status === 0) return c;
  return undefined;
}

describe('the naming lint', () => {
  test('finds each kind of violation', () => {
    const bad = [
      '# HELP a_total a gauge named like a counter',
      '# TYPE a_total gauge',
      'a_total 1',
      '# HELP b_requests a counter without _total',
      '# TYPE b_requests counter',
      'b_requests 1',
      '# TYPE c_latency_ms gauge',
      'c_latency_ms 1',
      'orphan_sample 2',
      '# HELP dCamel x',
      '# TYPE dCamel gauge',
      'dCamel 1',
    ].join('\n');
    const problems = lintExposition(bad);
    for (const expected of [
      'a_total: a gauge must not end in _total',
      'b_requests: a counter must end in _total',
      "c_latency_ms: 'ms' is not a base unit (use seconds or bytes)",
      'c_latency_ms: no HELP text',
      'orphan_sample: sample without TYPE',
      'dCamel: not snake_case',
    ])
      assert.ok(problems.includes(expected), `${expected} in ${JSON.stringify(problems)}`);
    assert.deepEqual(lintExposition('# HELP ok_total fine\n# TYPE ok_total counter\nok_total 3\n'), []);
  });
});

describe('/metrics', () => {
  test('passes the naming rules; no doubled prefix; no gauge named _total', async () => {
    const text = await scrape();
    assert.deepEqual(lintExposition(text), []);
    assert.ok(!text.includes('nimbus_process_process_'), 'no doubled prefix');
    const e = parseExposition(text);
    assert.equal(e.type.get('nimbus_process_cpu_seconds_total'), 'counter');
    assert.equal(e.type.get('nimbus_process_resident_memory_bytes'), 'gauge');
    assert.equal(e.type.get('nimbus_nodejs_active_handles'), 'gauge');
    assert.equal(e.type.get('nimbus_http_requests_refused_total'), 'counter');
    assert.equal(e.type.get('nimbus_http_requests_in_flight'), 'gauge');
  });

  test('promtool check metrics accepts it', {
    skip: promtool() ? false : 'promtool is not installed',
  }, async () => {
    const text = await scrape();
    const run = spawnSync(promtool() as string, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  });

  test('the inventory gauges equal the database', async () => {
    const e = parseExposition(await scrape());
    const db = t.db.db;
    const vms = await db
      .selectFrom('vms')
      .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
      .groupBy('state')
      .execute();
    assert.deepEqual(
      Object.fromEntries(vms.map((r) => [r.state, Number(r.n)])),
      { Running: 2, Stopped: 1 },
      'the scenario made 2 Running VMs and 1 Stopped',
    );
    for (const r of vms) assert.equal(sampleValue(e, 'nimbus_vms', { state: r.state }), Number(r.n), r.state);

    const hosts = await db.selectFrom('hosts').selectAll().where('clusterUuid', '=', env.cluster).execute();
    const sum = (f: (h: (typeof hosts)[number]) => number) => hosts.reduce((a, h) => a + f(h), 0);
    const cluster = { cluster: env.cluster };
    assert.equal(sampleValue(e, 'nimbus_hosts', cluster), 3);
    assert.equal(
      sampleValue(e, 'nimbus_host_cpus_capacity', cluster),
      sum((h) => h.cpuTotal),
    );
    assert.equal(
      sampleValue(e, 'nimbus_host_cpus_used', cluster),
      sum((h) => h.cpuUsed),
    );
    assert.ok(sum((h) => h.cpuUsed) >= 2, 'the VMs hold vCPUs');
    assert.equal(
      sampleValue(e, 'nimbus_host_memory_capacity_bytes', cluster),
      sum((h) => h.memoryTotal),
    );
    assert.equal(
      sampleValue(e, 'nimbus_host_memory_used_bytes', cluster),
      sum((h) => h.memoryUsed),
    );

    const used = await db
      .selectFrom('ipAddresses')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('l3NetworkUuid', '=', l3)
      .executeTakeFirstOrThrow();
    assert.ok(Number(used.n) >= 3, 'each VM holds an address');
    assert.equal(sampleValue(e, 'nimbus_l3_ips_used', { l3_network: l3 }), Number(used.n));
    assert.equal(sampleValue(e, 'nimbus_l3_ips_capacity', { l3_network: l3 }), 50, '.10–.59');

    const jobs = await db
      .selectFrom('jobs')
      .select(['kind', 'state', (eb) => eb.fn.countAll<string>().as('n')])
      .groupBy(['kind', 'state'])
      .execute();
    for (const r of jobs)
      assert.equal(sampleValue(e, 'nimbus_jobs', { kind: r.kind, state: r.state }), Number(r.n), r.kind);
    assert.equal(sampleValue(e, 'nimbus_jobs', { kind: 'vm.create', state: 'Succeeded' }), 3);
    const age = sampleValue(e, 'nimbus_inventory_age_seconds') ?? -1;
    assert.ok(age >= 0 && age < 5, `inventory age ${age} s`);
  });

  test('the operator token: 401 without it or with a wrong one, in the one error shape', async () => {
    const none = await t.anon.get('/metrics');
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'METRICS_TOKEN_MISSING');
    const wrong = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'METRICS_TOKEN_INVALID');
    // an account's session token is not the metrics token
    const session = await fetch(`${t.url}/metrics`, {
      headers: { authorization: `Bearer ${t.admin.token}` },
    });
    assert.equal(session.status, 401);
  });
});
