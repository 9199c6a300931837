/**
 * npm run bench:console -- [--vms 10000] [--hosts 100] [--runs 5]
 *
 * Cold-load time of the web console in Debian's Chromium (/usr/bin/chromium, headless), each
 * run in a new browser context (empty cache, nothing kept), logged in by putting a session into
 * sessionStorage before the page's scripts run (the login page is timed on its own):
 *   - login page: navigation → the Log in button (static files only: the reference for the rest)
 *   - dashboard: navigation → the VM count shown (the figures read from the API)
 *   - VM list: navigation → the first page of rows and the total shown
 * beside, in the same run, the API's own answer to the list page's request
 * (`GET /v1/vms?limit=50&count=true`) from this process. A fresh server on a new database; the
 * VMs (and 10 clusters of hosts) are inserted with SQL: this measures the console, not creation.
 * Prints figures; never fails on timing.
 */
import { existsSync } from 'node:fs';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_PASSWORD, Client, flags, machine, percentiles, startServer } from './lib.js';

const CHROMIUM = '/usr/bin/chromium';
const f = flags({
  vms: { type: 'string', default: '10000' },
  hosts: { type: 'string', default: '100' },
  runs: { type: 'string', default: '5' },
});
const N = Number(f.vms);
const HOSTS = Number(f.hosts);
const RUNS = Number(f.runs);

async function fill(databaseUrl: string): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const t0 = Date.now();
  await db.query(`
    with admin as (select uuid from accounts where name = 'admin')
    insert into zones (uuid, name, state, account_uuid) select gen_random_uuid(), 'bz', 'Enabled', uuid from admin;
    insert into clusters (uuid, name, zone_uuid, hypervisor_type, account_uuid)
      select gen_random_uuid(), 'bcluster-' || i, z.uuid, 'simulator', z.account_uuid from zones z, generate_series(0, 9) i;`);
  await db.query(
    `insert into hosts (uuid, name, zone_uuid, cluster_uuid, hypervisor_type, management_ip, status, cpu_total, memory_total, account_uuid)
     select gen_random_uuid(), c.name || '-host-' || i, c.zone_uuid, c.uuid, 'simulator',
            '10.' || substr(c.name, 10) || '.' || (i / 250) || '.' || (i % 250 + 1), 'Connected', 64, 274877906944, c.account_uuid
     from clusters c, generate_series(0, $1::int / 10 - 1) i`,
    [HOSTS],
  );
  await db.query(
    `with h as (select uuid, cluster_uuid, zone_uuid, account_uuid, row_number() over () - 1 as n from hosts)
     insert into vms (uuid, name, account_uuid, zone_uuid, cluster_uuid, host_uuid, cpu, memory, state, power_state, created_at)
     select gen_random_uuid(), 'bvm-' || i, h.account_uuid, h.zone_uuid, h.cluster_uuid, h.uuid, 1 + i % 4,
            (1 + i % 8)::bigint * 1073741824,
            (array['Running','Running','Running','Stopped','Paused','Destroyed'])[1 + i % 6], 'Running',
            now() - (i || ' seconds')::interval
     from generate_series(0, $1::int - 1) i
     join h on h.n = i % (select count(*) from hosts)`,
    [N],
  );
  await db.query('analyze');
  console.log(`filled ${N} VMs on ${HOSTS} hosts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await db.end();
}

/** A new context (cold cache) whose tab starts logged in, or not. */
async function coldPage(browser: Browser, session: object | null): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 960 } });
  if (session)
    await context.addInitScript((s) => {
      (globalThis as any).sessionStorage.setItem('nimbus.session', s);
    }, JSON.stringify(session));
  return context.newPage();
}

async function timed(page: Page, url: string, ready: (p: Page) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await page.goto(url, { waitUntil: 'commit' });
  await ready(page);
  const ms = performance.now() - t0;
  await page.context().close();
  return ms;
}

function row(name: string, samples: number[]): string {
  const p = percentiles(samples);
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  return `${name.padEnd(34)} ${String(Math.round(p.p50)).padStart(6)} ${String(Math.round(min)).padStart(6)} ${String(Math.round(max)).padStart(6)}`;
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.log(`${CHROMIUM} is absent (Debian package chromium): nothing to measure`);
    return;
  }
  console.log(`machine: ${machine()}`);
  const server = await startServer();
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    await fill(server.databaseUrl);
    const api = new Client(server.url);
    await api.login(ADMIN_PASSWORD);
    const who = (await api.call('GET', '/v1/auth/whoami')).body;
    const login = (await api.call('POST', '/v1/auth/login', { account: 'admin', password: ADMIN_PASSWORD }))
      .body;
    const session = { ...login, isAdmin: who.isAdmin, account: 'admin', user: 'admin' };
    const total = (await api.call('GET', '/v1/vms?limit=0&count=true')).body.total as number;

    const results: Record<string, number[]> = { login: [], dashboard: [], list: [], api: [] };
    // one warm-up of each page (the server's first answers, Chromium's own start) is not counted
    for (let run = -1; run < RUNS; run++) {
      const samples = {
        login: await timed(await coldPage(browser, null), `${server.url}/login`, (p) =>
          p.getByRole('button', { name: 'Log in' }).waitFor(),
        ),
        dashboard: await timed(await coldPage(browser, session), `${server.url}/`, (p) =>
          p.getByTestId('stat-vms').getByText(/^\d+$/).waitFor({ timeout: 60_000 }),
        ),
        list: await timed(await coldPage(browser, session), `${server.url}/vms`, async (p) => {
          await p
            .getByTestId('list-total')
            .getByText(`${total} vms`, { exact: true })
            .waitFor({ timeout: 60_000 });
          await p.getByTestId('kind-list').locator('tbody tr').first().waitFor();
        }),
        api: await (async () => {
          const t0 = performance.now();
          const res = await api.call('GET', '/v1/vms?limit=50&count=true');
          if (res.status !== 200) throw new Error(JSON.stringify(res.body));
          return performance.now() - t0;
        })(),
      };
      if (run >= 0) for (const [k, v] of Object.entries(samples)) results[k]?.push(v);
    }
    console.log(`\n${total} VMs listed (of ${N} inserted), ${RUNS} cold loads each, ms:`);
    console.log(`${''.padEnd(34)} ${'p50'.padStart(6)} ${'min'.padStart(6)} ${'max'.padStart(6)}`);
    console.log(row('reference: API GET /v1/vms page', results.api ?? []));
    console.log(row('reference: login page interactive', results.login ?? []));
    console.log(row('dashboard: VM count shown', results.dashboard ?? []));
    console.log(row('VM list: rows and total shown', results.list ?? []));
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
