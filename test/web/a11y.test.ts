/**
 * Accessibility of the main pages in Chromium (see browser.ts), as the admin and as a tenant:
 * every control named, language, title and main landmark, WCAG AA text contrast (a11y-checks.ts);
 * and, when axe-core is installed, no serious or critical axe violation. The pages: login,
 * dashboard, VM list, a VM, the VM wizard, the L3 wizard, the portal, a job.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD } from '../support/node.js';
import { lowContrastText, pageBasics, unnamedControls } from './a11y-checks.js';
import { type ConsoleRig, logIn, missingBrowser, startConsoleRig } from './browser.js';

if (missingBrowser) console.log(`# skipping the browser tests: ${missingBrowser}`);

/** axe-core's browser script, when the package is installed (it is not a dependency yet). */
function axeSource(): string | undefined {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  } catch {
    return undefined;
  }
}

describe('accessibility of the main pages', { skip: missingBrowser }, () => {
  let rig: ConsoleRig;
  let vmUuid: string;
  let jobUuid: string;
  const axe = axeSource();
  if (!axe) console.log('# axe-core is not installed: the built-in checks only (names, landmarks, contrast)');

  before(async () => {
    rig = await startConsoleRig('a11y');
    const job = await rig.t.admin.job('POST', '/v1/vms', {
      name: 'a11y-1',
      imageUuid: await rig.byName('images', 'ubuntu-22.04'),
      instanceOfferingUuid: await rig.byName('instance-offerings', 'small'),
      l3NetworkUuids: [await rig.byName('l3-networks', 'public')],
    });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    vmUuid = job.resourceUuid;
    jobUuid = job.uuid;
    const acme = await rig.t.admin.job('POST', '/v1/accounts', { name: 'acme', password: 'acme-password' });
    assert.equal(acme.state, 'Succeeded');
  });
  after(async () => {
    await rig?.stop();
  });

  async function audit(page: Page, what: string): Promise<string[]> {
    const problems = [
      ...(await pageBasics(page)),
      ...(await unnamedControls(page)).map((role) => `a ${role} without a name`),
      ...(await lowContrastText(page)).map((t) => `low contrast: ${t}`),
    ];
    if (axe) {
      await page.evaluate(axe);
      const violations = (await page.evaluate(
        'axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))',
      )) as { id: string; impact: string; nodes: number }[];
      for (const v of violations)
        if (v.impact === 'serious' || v.impact === 'critical')
          problems.push(`axe ${v.impact}: ${v.id} (${v.nodes} nodes)`);
    }
    await rig.shot(page, `a11y-${what}`);
    return problems.map((p) => `${what}: ${p}`);
  }

  test('admin pages: login, dashboard, VMs, a VM, the VM and L3 wizards, the portal, a job', async () => {
    // axe is injected as a script: a context that lets DevTools add it past the page's CSP
    const context = await rig.browser.newContext({
      viewport: { width: 1440, height: 960 },
      bypassCSP: !!axe,
    });
    const page = await context.newPage();
    const problems: string[] = [];
    await page.goto(`${rig.t.url}/login`);
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    problems.push(...(await audit(page, 'login')));
    await logIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByTestId('recent-events').locator('tr').first().waitFor();
    problems.push(...(await audit(page, 'dashboard')));
    const pages: [string, string, string][] = [
      ['vms', '/vms', 'a11y-1'],
      ['vm', `/vms/${vmUuid}`, 'a11y-1'],
      ['vm-wizard', '/vms/new', 'New vm'],
      ['l3-wizard', '/l3-networks/new', 'New l3-network'],
      ['portal', '/portal', 'dev-small'],
      ['job', `/jobs/${jobUuid}`, 'vm.create'],
    ];
    for (const [what, path, text] of pages) {
      await page.goto(`${rig.t.url}${path}`);
      await page.getByText(text, { exact: true }).first().waitFor();
      problems.push(...(await audit(page, what)));
    }
    await context.close();
    assert.deepEqual(problems, []);
  });

  test('a tenant’s dashboard and portal', async () => {
    const context = await rig.browser.newContext({
      viewport: { width: 1280, height: 900 },
      bypassCSP: !!axe,
    });
    const page = await context.newPage();
    await page.goto(`${rig.t.url}/login`);
    await logIn(page, 'acme', 'acme-password');
    await page.getByTestId('stat-vms').waitFor();
    const problems = await audit(page, 'tenant-dashboard');
    await page.goto(`${rig.t.url}/portal`);
    await page.getByText('dev-small', { exact: true }).waitFor();
    problems.push(...(await audit(page, 'tenant-portal')));
    await context.close();
    assert.deepEqual(problems, []);
  });
});
