/**
 * The create wizards and list pages in Chromium (see browser.ts): a VM made through the VM wizard, its job
 * followed live until the VM is Running; an L3 network with an IP range made in one go; a volume
 * attached to a VM through its action dialog, choosing the VM by name; a field the schema refuses
 * marked as the user types (nothing sent), and a refusal only the API can make shown next to the
 * field the API names; a failed job's code, message and steps rolled back; a list's column choice
 * and a bulk action, confirmed, with each resource's outcome.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD } from '../support/node.js';
import { type ConsoleRig, eventually, logIn, missingBrowser, startConsoleRig } from './browser.js';

if (missingBrowser) console.log(`# skipping the browser tests: ${missingBrowser}`);

/** Picks `option` in the Mantine Select or MultiSelect labelled `label`. */
async function choose(p: Page, label: string, option: string | RegExp): Promise<void> {
  await p.getByRole('combobox', { name: label, exact: true }).click();
  await p.getByRole('option', { name: option }).first().click();
  await p.keyboard.press('Escape');
}

describe('create wizards in Chromium', { skip: missingBrowser }, () => {
  let rig: ConsoleRig;
  let page: Page;

  before(async () => {
    rig = await startConsoleRig('wizards');
    page = await rig.newPage();
    await page.goto(`${rig.t.url}/login`);
    await logIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  });
  after(async () => {
    await rig?.stop();
  });

  test('the VM wizard: a name the schema refuses is marked as typed; the VM is made and its job reaches Running', async () => {
    await page.goto(`${rig.t.url}/vms`);
    await page.getByRole('link', { name: 'New vm' }).click();
    await page.waitForURL(`${rig.t.url}/vms/new`);
    const name = page.getByRole('textbox', { name: 'name', exact: true });
    // the contract's name pattern: no leading or trailing spaces — said before anything is sent
    await name.fill(' wiz-1');
    assert.equal(await name.getAttribute('aria-invalid'), 'true');
    await page.getByText('must match pattern').waitFor();
    await name.fill('wiz-1');
    assert.notEqual(await name.getAttribute('aria-invalid'), 'true');
    await choose(page, 'imageUuid', /^ubuntu-22\.04/);
    await choose(page, 'instanceOfferingUuid', /^small/);
    await page.getByRole('button', { name: 'Next' }).click();
    await choose(page, 'l3NetworkUuids', /^public/);
    await page.getByRole('button', { name: 'Next' }).click(); // volumes
    await page.getByRole('button', { name: 'Next' }).click(); // placement
    await page.getByRole('button', { name: 'Next' }).click(); // guest
    // user-data is a textarea (several lines); the VM keeps it and says only that it has some
    const userData = page.getByRole('textbox', { name: 'userData', exact: true });
    assert.equal(await userData.evaluate((e) => e.tagName), 'TEXTAREA');
    await userData.fill('#cloud-config\nruncmd:\n  - echo wizard > /etc/motd\n');
    await page.getByRole('button', { name: 'Next' }).click(); // review
    await page.getByTestId('review').getByText('imageUuid').waitFor();
    await rig.shot(page, 'wizard-vm-review');
    await page.getByRole('button', { name: 'Create' }).click();
    const progress = page.getByTestId('job-progress').first();
    await progress.waitFor();
    await page.locator('[data-job-state="Succeeded"]').first().waitFor({ timeout: 30_000 });
    // the job's events arrived live, and the VM's state follows the stream to Running
    await page.getByTestId('job-events').first().waitFor();
    await eventually(async () =>
      assert.equal(await page.getByTestId('created-state').textContent(), 'Running'),
    );
    await rig.shot(page, 'wizard-vm-running');
    const vms = (await rig.t.admin.get('/v1/vms?q=name=wiz-1')).body.items;
    assert.equal(vms.length, 1);
    assert.equal(vms[0].state, 'Running');
    assert.equal(vms[0].imageUuid, await rig.byName('images', 'ubuntu-22.04'));
    assert.equal(vms[0].hasUserData, true);
    await page.getByTestId('created').getByRole('link', { name: 'wiz-1' }).click();
    await page.waitForURL(`${rig.t.url}/vms/${vms[0].uuid}`);
    // its page shows the serial log its (simulated) host keeps: the synthetic boot of this VM
    await page.getByTestId('serial-log-text').getByText(`start of VM ${vms[0].uuid}`).waitFor();
  });

  test('a VM whose job fails: the code, the message and the steps rolled back, in order', async () => {
    const fault = await rig.t.admin.post('/v1/simulator/faults', {
      point: 'step:vm.create/start-on-host',
      error: { code: 'INJECTED_FAULT', message: 'the host refused to start it' },
      times: 1,
    });
    assert.equal(fault.status, 201, JSON.stringify(fault.body));
    await page.goto(`${rig.t.url}/vms/new`);
    await page.getByRole('textbox', { name: 'name', exact: true }).fill('wiz-fails');
    await choose(page, 'imageUuid', /^ubuntu-22\.04/);
    await choose(page, 'instanceOfferingUuid', /^small/);
    await page.getByRole('button', { name: 'Next' }).click();
    await choose(page, 'l3NetworkUuids', /^public/);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('[data-job-state="Failed"]').waitFor({ timeout: 30_000 });
    const failure = page.getByTestId('job-error');
    await failure.getByText('INJECTED_FAULT').waitFor();
    await failure.getByText('the host refused to start it').waitFor();
    const jobs = (await rig.t.admin.get('/v1/jobs?q=kind=vm.create&q=state=Failed')).body.items;
    assert.equal(jobs.length, 1);
    const undone: string[] = jobs[0].steps.rolledBack;
    assert.equal(undone[0], 'start-on-host', JSON.stringify(jobs[0].steps));
    assert.ok(undone.includes('allocate-host') && undone.at(-1) === 'create-record', undone.join());
    assert.equal(
      await page.getByTestId('job-rolled-back').textContent(),
      `Rolled back: ${undone.join(', ')}`,
    );
    await rig.shot(page, 'wizard-vm-failed-rolled-back');
  });

  test('an L3 network with an IP range in one go', async () => {
    await page.goto(`${rig.t.url}/l3-networks/new`);
    await page.getByRole('textbox', { name: 'name', exact: true }).fill('lab-net');
    await choose(page, 'l2NetworkUuid', /^l2-vlan100/);
    await choose(page, 'category', 'private');
    await page.getByRole('button', { name: 'Add an IP range' }).click();
    const range = page.getByRole('group', { name: 'ip-range 1' });
    await range.getByRole('textbox', { name: 'name', exact: true }).fill('lab-range');
    await range.getByRole('textbox', { name: 'cidr', exact: true }).fill('10.20.0.0/24');
    await page.getByRole('button', { name: 'Create' }).click();
    await eventually(async () => assert.equal(await page.locator('[data-job-state="Succeeded"]').count(), 2));
    await rig.shot(page, 'wizard-l3-range');
    const l3 = (await rig.t.admin.get('/v1/l3-networks?q=name=lab-net')).body.items[0];
    assert.ok(l3, 'lab-net made');
    assert.equal(l3.category, 'private');
    const ranges = (await rig.t.admin.get(`/v1/ip-ranges?q=l3NetworkUuid=${l3.uuid}`)).body.items;
    assert.deepEqual(
      ranges.map((r: any) => [r.name, r.startIp, r.endIp]),
      [['lab-range', ranges[0].startIp, ranges[0].endIp]],
    );
    assert.match(ranges[0].startIp, /^10\.20\.0\./);
  });

  test('a security group with two rules in one go; a rule the schema refuses is marked in its row', async () => {
    await page.goto(`${rig.t.url}/security-groups/new`);
    await page.getByRole('textbox', { name: 'name', exact: true }).fill('web-sg');
    for (const _ of [1, 2]) await page.getByRole('button', { name: 'Add a rule' }).click();
    const [first, second] = [1, 2].map((i) => page.getByRole('group', { name: `security-group-rule ${i}` }));
    for (const row of [first!, second!]) {
      await row.getByRole('combobox', { name: 'direction', exact: true }).click();
      await page.getByRole('option', { name: 'ingress', exact: true }).click();
      await row.getByRole('combobox', { name: 'protocol', exact: true }).click();
      await page.getByRole('option', { name: 'tcp', exact: true }).click();
    }
    const port = second!.getByRole('textbox', { name: 'portStart', exact: true });
    await first!.getByRole('textbox', { name: 'portStart', exact: true }).fill('22');
    await port.fill('70000');
    assert.equal(await port.getAttribute('aria-invalid'), 'true');
    await second!.getByText('must be <= 65535').waitFor();
    // nothing is sent while a row has a problem
    await page.getByRole('button', { name: 'Create' }).click();
    assert.equal((await rig.t.admin.get('/v1/security-groups?q=name=web-sg')).body.items.length, 0);
    await port.fill('443');
    await page.getByRole('button', { name: 'Create' }).click();
    await eventually(async () => assert.equal(await page.locator('[data-job-state="Succeeded"]').count(), 3));
    const sg = (await rig.t.admin.get('/v1/security-groups?q=name=web-sg')).body.items[0];
    const rules = (await rig.t.admin.get(`/v1/security-group-rules?q=securityGroupUuid=${sg.uuid}`)).body
      .items;
    assert.deepEqual(rules.map((r: any) => [r.direction, r.protocol, r.portStart]).sort(), [
      ['ingress', 'tcp', 22],
      ['ingress', 'tcp', 443],
    ]);
  });

  test('a refusal only the API can make shows next to the field it names', async () => {
    // the schema takes any text of 2–45 characters as startIp; the service checks the address
    await page.goto(`${rig.t.url}/ip-ranges/new`);
    await page.getByRole('textbox', { name: 'name', exact: true }).fill('bad-range');
    await choose(page, 'l3NetworkUuid', /^lab-net/);
    await page.getByRole('textbox', { name: 'startIp', exact: true }).fill('10.20.9.1');
    await page.getByRole('textbox', { name: 'endIp', exact: true }).fill('not-an-address');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByTestId('api-error').waitFor();
    const field = page.getByRole('textbox', { name: 'endIp', exact: true });
    assert.equal(await field.getAttribute('aria-invalid'), 'true');
    const described = await field.getAttribute('aria-describedby');
    assert.ok(described, 'the error is tied to the field');
    await rig.shot(page, 'wizard-api-error-by-field');
    assert.equal((await rig.t.admin.get('/v1/ip-ranges?q=name=bad-range')).body.items.length, 0);
  });

  test('a volume made attached to a VM (chosen by name), detached, and attached again through its dialog', async () => {
    const vm = (await rig.t.admin.get('/v1/vms?q=name=wiz-1')).body.items[0];
    await page.goto(`${rig.t.url}/volumes/new`);
    await page.getByRole('textbox', { name: 'name', exact: true }).fill('data-1');
    await page.getByRole('textbox', { name: 'size (GiB)', exact: true }).fill('2');
    // on local storage a data volume must sit on its VM's host: made for the VM, it does
    await page.getByRole('combobox', { name: 'vmUuid', exact: true }).click();
    await page.getByRole('option', { name: /^wiz-1/ }).click();
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('[data-job-state="Succeeded"]').waitFor({ timeout: 30_000 });
    const vol = () => rig.t.admin.get('/v1/volumes?q=name=data-1').then((r) => r.body.items[0]);
    assert.equal((await vol()).vmUuid, vm.uuid);

    await page.getByTestId('created').getByRole('link', { name: 'data-1' }).click();
    const actions = page.getByRole('group', { name: 'actions' });
    const dialog = page.getByRole('dialog');
    await actions.getByRole('button', { name: 'detach' }).click();
    await dialog.getByRole('button', { name: 'detach' }).click();
    await dialog.locator('[data-job-state="Succeeded"]').waitFor({ timeout: 30_000 });
    await dialog.getByRole('button', { name: 'Close' }).click();
    assert.equal((await vol()).vmUuid, null);

    await actions.getByRole('button', { name: 'attach' }).click();
    await dialog.getByRole('combobox', { name: 'vmUuid', exact: true }).click();
    await page.getByRole('option', { name: /^wiz-1/ }).click();
    await dialog.getByRole('button', { name: 'attach' }).click();
    await dialog.locator('[data-job-state="Succeeded"]').waitFor({ timeout: 30_000 });
    await rig.shot(page, 'volume-attached');
    await dialog.getByRole('button', { name: 'Close' }).click();
    assert.equal((await vol()).vmUuid, vm.uuid);
    await eventually(async () =>
      assert.equal(await page.locator('[data-field="vmUuid"]').textContent(), 'wiz-1'),
    );
  });

  test('lists: a column chosen is shown and kept in the URL; a bulk stop, confirmed, stops each VM; a second shows each refusal', async () => {
    for (const name of ['bulk-1', 'bulk-2']) {
      const job = await rig.t.admin.job('POST', '/v1/vms', {
        name,
        imageUuid: await rig.byName('images', 'ubuntu-22.04'),
        instanceOfferingUuid: await rig.byName('instance-offerings', 'small'),
        l3NetworkUuids: [await rig.byName('l3-networks', 'public')],
      });
      assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    }
    await page.goto(`${rig.t.url}/vms?q=name~%3Dbulk%25`);
    const list = page.getByTestId('kind-list');
    await list.getByRole('link', { name: 'bulk-2' }).waitFor();
    assert.equal(await list.getByRole('columnheader', { name: 'powerState' }).count(), 0);
    await page.getByRole('combobox', { name: 'Columns' }).click();
    await page.getByRole('option', { name: 'powerState', exact: true }).click();
    await page.keyboard.press('Escape');
    await list.getByRole('columnheader', { name: 'powerState' }).waitFor();
    assert.match(page.url(), /cols=[^&]*powerState/);

    await list.getByRole('checkbox', { name: 'select every row of this page' }).check();
    const bulk = page.getByRole('group', { name: 'bulk actions' });
    await bulk.getByText('2 selected:').waitFor();
    await bulk.getByRole('button', { name: 'stop', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('stop 2 VMs?').waitFor();
    // nothing is sent before the confirmation
    assert.equal((await rig.t.admin.get('/v1/vms?q=name~=bulk%25&q=state=Running&count=true')).body.total, 2);
    await dialog.getByRole('button', { name: 'stop 2' }).click();
    await eventually(async () =>
      assert.equal(await dialog.locator('[data-job-state="Succeeded"]').count(), 2),
    );
    // the list behind the dialog shows them as the jobs left them
    await eventually(async () =>
      assert.deepEqual(await list.locator('tbody td[data-cell="state"]').allTextContents(), [
        'Stopped',
        'Stopped',
      ]),
    );
    await rig.shot(page, 'list-bulk-stop');
    await dialog.getByRole('button', { name: 'Close' }).click();
    assert.equal((await rig.t.admin.get('/v1/vms?q=name~=bulk%25&q=state=Stopped&count=true')).body.total, 2);

    await list.getByRole('checkbox', { name: 'select bulk-1' }).check();
    await list.getByRole('checkbox', { name: 'select bulk-2' }).check();
    await bulk.getByRole('button', { name: 'stop', exact: true }).click();
    await dialog.getByRole('button', { name: 'stop 2' }).click();
    for (const name of ['bulk-1', 'bulk-2'])
      await dialog
        .locator(`tr[data-name="${name}"]`)
        .getByRole('alert')
        .getByText('VM_INVALID_STATE')
        .waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  test('no page error and no Content-Security-Policy violation', () => {
    assert.deepEqual(rig.pageErrors, []);
  });
});
