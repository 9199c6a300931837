/**
 * The web console in a real browser: Debian's Chromium (/usr/bin/chromium, installed by .ci/run)
 * driven by playwright-core, headless, against a test node with the demo environment. One browser,
 * a few pages: log in, the dashboard's figures equal the API's, list VMs, open one, stop it with its
 * action button and see its state change live, an expired session returns to the page after
 * logging in again, log out; a tenant sees no Hosts and cannot open them by URL.
 * Screenshots go to $NIMBUS_SCREENSHOTS (default: a temporary directory, printed).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createDemoEnvironment } from '../../src/demo.js';
import { ADMIN_PASSWORD, type Api, startTestNode, type TestNode } from '../support/node.js';
import { CHROMIUM, eventually, logIn, missingBrowser as missing } from './browser.js';

if (missing) console.log(`# skipping the browser tests: ${missing}`);

const GiB = 1024 ** 3;

describe('web console in Chromium', { skip: missing }, () => {
  let t: TestNode;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let vmUuid: string;
  const shots = process.env.NIMBUS_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'nimbus-console-'));
  const pageErrors: string[] = [];
  const shot = (p: Page, name: string) => p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const total = async (api: Api, path: string) => {
    const res = await api.get(`${path}${path.includes('?') ? '&' : '?'}limit=0&count=true`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.total as number;
  };
  const byName = async (kind: string, name: string) =>
    (await t.admin.get(`/v1/${kind}?q=name=${name}`)).body.items[0].uuid as string;

  before(async () => {
    mkdirSync(shots, { recursive: true });
    console.log(`# screenshots: ${shots}`);
    t = await startTestNode();
    const admin = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('type', '=', 'admin')
      .executeTakeFirstOrThrow();
    assert.ok(
      await createDemoEnvironment(
        t.node.services,
        t.node.kindServices,
        admin.uuid,
        pino({ level: 'silent' }),
      ),
    );
    const vm = await t.admin.job('POST', '/v1/vms', {
      name: 'web-1',
      imageUuid: await byName('images', 'ubuntu-22.04'),
      instanceOfferingUuid: await byName('instance-offerings', 'small'),
      l3NetworkUuids: [await byName('l3-networks', 'public')],
    });
    assert.equal(vm.state, 'Succeeded', JSON.stringify(vm));
    vmUuid = vm.resourceUuid;
    const acme = await t.admin.job('POST', '/v1/accounts', { name: 'acme', password: 'acme-password' });
    assert.equal(acme.state, 'Succeeded', JSON.stringify(acme));

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    context = await browser.newContext({ viewport: { width: 1440, height: 960 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  test('/ asks for a login, then the dashboard shows the API’s figures', async () => {
    await page.goto(`${t.url}/`);
    await page.waitForURL(/\/login\?next=%2F$/);
    await shot(page, 'login');
    await logIn(page, 'admin', ADMIN_PASSWORD);
    await page.waitForURL(`${t.url}/`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();

    const hosts = (await t.admin.get('/v1/hosts?limit=1000')).body.items as any[];
    assert.equal(hosts.length, 4);
    const connected = hosts.filter((h) => h.status === 'Connected').length;
    await eventually(async () =>
      assert.equal(await page.getByTestId('stat-hosts').textContent(), `${connected} / ${hosts.length}`),
    );
    // zone-1 holds every host: its CPU and memory cells are the sums of the hosts'
    const cpuUsed = hosts.reduce((n, h) => n + h.cpuUsed, 0);
    const cpuTotal = hosts.reduce((n, h) => n + h.cpuTotal, 0);
    const memUsed = hosts.reduce((n, h) => n + h.memoryUsed, 0);
    const memTotal = hosts.reduce((n, h) => n + h.memoryTotal, 0);
    const zoneRow = page.getByTestId('capacity-zone').locator('tr[data-name="zone-1"]');
    await eventually(async () => {
      const now = (await t.admin.get('/v1/hosts?limit=1000')).body.items as any[];
      const used = now.reduce((n, h) => n + h.cpuUsed, 0);
      assert.equal(await zoneRow.locator('[data-cell="cpu"]').textContent(), `${used} / ${cpuTotal}`);
    });
    assert.ok(cpuUsed >= 1 && memUsed >= GiB, 'the demo pool and web-1 hold capacity');
    // and each host's row (the 10 fullest: the demo has 4) shows its own figures
    const hostRows = page.getByTestId('capacity-host').locator('tbody tr');
    await eventually(async () => assert.equal(await hostRows.count(), hosts.length));
    await eventually(async () => {
      for (const h of (await t.admin.get('/v1/hosts?limit=1000')).body.items as any[]) {
        const row = page.getByTestId('capacity-host').locator(`tr[data-name="${h.name}"]`);
        assert.equal(await row.locator('[data-cell="cpu"]').textContent(), `${h.cpuUsed} / ${h.cpuTotal}`);
      }
    });
    assert.match(
      (await zoneRow.locator('[data-cell="memory"]').textContent())!,
      new RegExp(`/ ${(memTotal / GiB).toFixed(1)}$`),
    );
    // VMs and running VMs, as counted by the API (the demo pool's warm VMs come and go: wait until both agree)
    await eventually(async () => {
      const [ui, api] = [await page.getByTestId('stat-vms').textContent(), await total(t.admin, '/v1/vms')];
      assert.equal(ui, String(api));
    });
    await eventually(async () => {
      const ui = await page.getByTestId('stat-vms-running').textContent();
      assert.equal(ui, String(await total(t.admin, '/v1/vms?q=state=Running')));
    });
    // IP use of the demo's public network
    const l3 = (await t.admin.get('/v1/l3-networks?q=name=public')).body.items[0];
    await eventually(async () => {
      const now = (await t.admin.get(`/v1/l3-networks/${l3.uuid}`)).body;
      const row = page.getByTestId('l3-usage').locator('tr[data-name="public"]');
      assert.equal(await row.locator('td').nth(1).textContent(), `${now.ipUsed} / ${now.ipTotal}`);
    });
    await page.getByTestId('recent-events').locator('tr').first().waitFor();
    await shot(page, 'dashboard');
  });

  test('the VM list shows web-1; its page stops it with the stop button; the state changes live', async () => {
    await page.getByRole('link', { name: 'VMs', exact: true }).click();
    await page.waitForURL(`${t.url}/vms`);
    const link = page.getByTestId('kind-list').getByRole('link', { name: 'web-1', exact: true });
    await link.waitFor();
    // the filter box speaks the query language
    await page.getByLabel('Filter').fill('name=web-1 state=Running');
    await page.getByLabel('Filter').press('Enter');
    await page.waitForURL(/q=name%3Dweb-1\+state%3DRunning/);
    await eventually(async () => assert.equal(await page.getByTestId('list-total').textContent(), '1 vm'));
    await shot(page, 'vm-list');
    await link.click();
    await page.waitForURL(`${t.url}/vms/${vmUuid}`);
    const state = page.locator('[data-field="state"]');
    await eventually(async () => assert.equal(await state.textContent(), 'Running'));
    // references read as names: the offering
    await eventually(async () =>
      assert.equal(await page.locator('[data-field="instanceOfferingUuid"]').textContent(), 'small'),
    );

    await page
      .getByRole('group', { name: 'actions' })
      .getByRole('button', { name: 'stop', exact: true })
      .click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('stop web-1?').waitFor();
    await dialog.getByRole('button', { name: 'stop', exact: true }).click();
    await dialog.locator('[data-job-state="Succeeded"]').waitFor({ timeout: 15_000 });
    await shot(page, 'vm-stop-job');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await eventually(async () => assert.equal(await state.textContent(), 'Stopped'));
    assert.equal((await t.admin.get(`/v1/vms/${vmUuid}`)).body.state, 'Stopped');
    await shot(page, 'vm-detail');
  });

  test('a refused action shows the API’s error, and a bad field next to that field', async () => {
    const actions = page.getByRole('group', { name: 'actions' });
    const dialog = page.getByRole('dialog');
    await actions.getByRole('button', { name: 'stop', exact: true }).click();
    await dialog.getByRole('button', { name: 'stop', exact: true }).click();
    await dialog.getByRole('alert').getByText('VM_INVALID_STATE').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();

    await actions.getByRole('button', { name: 'change-offering' }).click();
    await dialog.getByLabel('cpu', { exact: true }).fill('0');
    await dialog.getByRole('button', { name: 'change-offering' }).click();
    await dialog.getByRole('alert').first().waitFor();
    assert.equal(await dialog.getByLabel('cpu', { exact: true }).getAttribute('aria-invalid'), 'true');
    await shot(page, 'vm-refused-field');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });

  test('the job chart follows the event stream: a job finished through the API shows up', async () => {
    await page.getByRole('link', { name: 'Dashboard' }).click();
    const chart = page.getByTestId('live-jobs');
    await eventually(async () => assert.ok(Number(await chart.getAttribute('data-jobs-finished')) > 0));
    const before = Number(await chart.getAttribute('data-jobs-finished'));
    const seen = Number(await chart.getAttribute('data-events-seen'));
    const job = await t.admin.job('POST', `/v1/vms/${vmUuid}/actions/start`, {});
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    await eventually(async () => {
      assert.ok(Number(await chart.getAttribute('data-events-seen')) > seen);
      assert.ok(Number(await chart.getAttribute('data-jobs-finished')) > before);
    });
  });

  test('every kind has a list page, and its first row opens a detail page without an error', async () => {
    const { KINDS } = await import('../../src/contract/kinds.js');
    const opened: string[] = [];
    for (const k of KINDS) {
      await page.goto(`${t.url}/${k.kind}`);
      await page.getByTestId('list-total').getByText(/^\d+ /).waitFor();
      assert.equal(
        await page.getByRole('alert').count(),
        0,
        `${k.kind}: ${await page.getByRole('alert').allTextContents()}`,
      );
      const rows = page.getByTestId('kind-list').locator('tbody tr');
      if ((await rows.count()) === 0) continue;
      // the first cell (after the tick box of bulk actions) opens the row's page (its name, uuid or first column)
      const first = rows.first().locator('td:not([data-cell="pick"])').first().getByRole('link');
      assert.equal(await first.count(), 1, `${k.kind}: the first cell of a row is no link`);
      const href = await first.getAttribute('href');
      assert.ok(href?.startsWith(`/${k.kind}/`), `${k.kind}: ${href}`);
      await first.click();
      await page.getByTestId('detail-fields').waitFor();
      assert.equal(
        await page.getByRole('alert').count(),
        0,
        `${href}: ${await page.getByRole('alert').allTextContents()}`,
      );
      opened.push(k.kind);
    }
    console.log(`# detail pages opened: ${opened.length} of ${KINDS.length} kinds (${opened.join(' ')})`);
    // the demo environment has rows of most kinds: their detail pages were opened
    for (const kind of [
      'zones',
      'hosts',
      'vms',
      'images',
      'l3-networks',
      'ip-ranges',
      'pools',
      'jobs',
      'events',
    ])
      assert.ok(opened.includes(kind), `${kind} not opened (opened: ${opened.join(', ')})`);
  });

  test('an expired session goes back to the login page, which returns to the page asked for', async () => {
    await page.evaluate(() => {
      const s = JSON.parse((globalThis as any).sessionStorage.getItem('nimbus.session')!);
      (globalThis as any).sessionStorage.setItem(
        'nimbus.session',
        JSON.stringify({ ...s, token: 'revoked-or-expired' }),
      );
    });
    await page.goto(`${t.url}/volumes`);
    await page.waitForURL(/\/login\?next=%2Fvolumes$/);
    await logIn(page, 'admin', ADMIN_PASSWORD);
    await page.waitForURL(`${t.url}/volumes`);
    await page.getByRole('heading', { name: 'Volumes' }).waitFor();
  });

  test('log out revokes the token and returns to the login page', async () => {
    const token = await page.evaluate(
      () => JSON.parse((globalThis as any).sessionStorage.getItem('nimbus.session')!).token as string,
    );
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${t.url}/login`);
    assert.equal(
      await page.evaluate(() => (globalThis as any).sessionStorage.getItem('nimbus.session')),
      null,
    );
    const res = await fetch(`${t.url}/v1/auth/whoami`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401);
    await page.goto(`${t.url}/vms`);
    await page.waitForURL(/\/login\?next=%2Fvms$/);
  });

  test('a tenant sees no Hosts, nor admin figures, and cannot open hosts by URL', async () => {
    const tenant = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await tenant.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await p.goto(`${t.url}/login`);
    await logIn(p, 'acme', 'acme-password');
    await p.waitForURL(`${t.url}/`);
    await p.getByTestId('stat-vms').waitFor();
    const menu = p.getByRole('navigation', { name: 'Resources' });
    await menu.getByRole('link', { name: 'VMs', exact: true }).waitFor();
    for (const hidden of ['Hosts', 'Clusters', 'Accounts', 'Primary storages'])
      assert.equal(await menu.getByRole('link', { name: hidden, exact: true }).count(), 0, hidden);
    assert.equal(await p.getByTestId('stat-hosts').count(), 0);
    assert.equal(await p.getByTestId('capacity-zone').count(), 0);
    await eventually(async () => assert.equal(await p.getByTestId('stat-vms').textContent(), '0'));
    await shot(p, 'tenant-dashboard');
    // its own VM: no host column or field, no admin action (migrate)
    const acme = await t.anon.login('acme', 'acme-password');
    const job = await acme.job('POST', '/v1/vms', {
      name: 'acme-1',
      imageUuid: await byName('images', 'ubuntu-22.04'),
      instanceOfferingUuid: await byName('instance-offerings', 'small'),
      l3NetworkUuids: [await byName('l3-networks', 'public')],
    });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    await p.goto(`${t.url}/vms`);
    await p.getByTestId('kind-list').getByRole('link', { name: 'acme-1' }).waitFor();
    assert.equal(await p.getByRole('columnheader', { name: 'hostUuid' }).count(), 0);
    await p.getByTestId('kind-list').getByRole('link', { name: 'acme-1' }).click();
    const actions = p.getByRole('group', { name: 'actions' });
    await actions.getByRole('button', { name: 'stop', exact: true }).waitFor();
    assert.equal(await actions.getByRole('button', { name: 'migrate' }).count(), 0);
    for (const field of ['hostUuid', 'clusterUuid', 'lastHostUuid', 'accountUuid'])
      assert.equal(await p.locator(`[data-field="${field}"]`).count(), 0, field);
    await shot(p, 'tenant-vm');
    const host = (await t.admin.get('/v1/hosts?limit=1')).body.items[0].uuid;
    for (const path of ['/hosts', `/hosts/${host}`]) {
      await p.goto(`${t.url}${path}`);
      await p.getByRole('alert').getByText('Not found').waitFor();
    }
    await tenant.close();
  });

  test('no page error and no Content-Security-Policy violation on any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
