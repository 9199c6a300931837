/**
 * The inventory snapshot: at most one read per cache period however many gauges and scrapes ask,
 * a scrape bounded when the database is slow (it gets the last snapshot), and the last snapshot
 * kept when a read fails.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { Inventory, type InventorySnapshot, registerInventoryGauges } from './inventory-metrics.js';

const snapshot = (running: number): InventorySnapshot => ({
  vms: [{ state: 'Running', n: running }],
  hosts: [{ cluster: 'c1', hosts: 2, cpuUsed: 3, cpuTotal: 16, memoryUsed: 1024, memoryTotal: 4096 }],
  l3s: [{ uuid: 'l3-1', name: 'pub', used: 5, total: 50 }],
  jobs: [
    { kind: 'vm.create', state: 'Succeeded', n: 7 },
    { kind: 'vm.create', state: 'Running', n: 1 },
  ],
});

test('one read per cache period for every gauge and scrape', async () => {
  let reads = 0;
  const inventory = new Inventory(async () => {
    reads++;
    return snapshot(reads);
  }, 60);
  const registry = new Registry();
  registerInventoryGauges(registry, inventory);
  const [a, b] = await Promise.all([registry.metrics(), registry.metrics()]);
  assert.equal(reads, 1);
  assert.equal(a, b);
  assert.match(a, /^nimbus_vms\{state="Running"\} 1$/m);
  assert.match(a, /^nimbus_host_cpus_capacity\{cluster="c1"\} 16$/m);
  assert.match(a, /^nimbus_l3_ips_used\{l3_network="l3-1",name="pub"\} 5$/m);
  assert.match(a, /^nimbus_jobs\{kind="vm.create",state="Succeeded"\} 7$/m);
  assert.match(a, /^nimbus_jobs_unfinished\{kind="vm.create",state="Running"\} 1$/m);
  assert.doesNotMatch(a, /nimbus_jobs_unfinished\{[^}]*Succeeded/);
  await registry.metrics();
  assert.equal(reads, 1, 'cached');
});

test('a slow database: the scrape waits at most waitMs and shows the last snapshot; a failed read keeps it', async () => {
  let mode: 'ok' | 'slow' | 'fail' = 'ok';
  let reads = 0;
  const inventory = new Inventory(
    async () => {
      reads++;
      const now = mode;
      if (now === 'slow') await new Promise((r) => setTimeout(r, 2000));
      if (now === 'fail') throw new Error('connection lost');
      return snapshot(reads);
    },
    0,
    100,
  );
  assert.equal((await inventory.read())?.data.vms[0]?.n, 1);
  mode = 'slow';
  const started = Date.now();
  const stale = await inventory.read();
  assert.ok(Date.now() - started < 1000, 'did not wait for the slow read');
  assert.equal(stale?.data.vms[0]?.n, 1, 'the last snapshot');
  mode = 'fail';
  await new Promise((r) => setTimeout(r, 2100)); // the slow read lands (snapshot 2)
  const kept = await inventory.read();
  assert.equal(kept?.data.vms[0]?.n, 2, 'a failed read keeps the last snapshot');
  assert.ok((kept?.ageSeconds ?? 0) > 0);
});

test('no snapshot yet and the database away: the gauges are absent, not zero', async () => {
  const inventory = new Inventory(async () => {
    throw new Error('down');
  }, 0);
  const registry = new Registry();
  registerInventoryGauges(registry, inventory);
  const text = await registry.metrics();
  assert.doesNotMatch(text, /^nimbus_vms\{/m);
  assert.match(text, /^nimbus_inventory_age_seconds -1$/m);
});
