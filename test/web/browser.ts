/**
 * What the browser tests share: a test node with the demo environment, Debian's Chromium
 * (/usr/bin/chromium) driven by playwright-core, logging in, screenshots into
 * $NIMBUS_SCREENSHOTS (default: a temporary directory, printed), and `eventually` for figures
 * that follow the event stream.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { createDemoEnvironment } from '../../src/demo.js';
import { startTestNode, type TestNode } from '../support/node.js';

export const CHROMIUM = '/usr/bin/chromium';
/** false, or why the browser tests are skipped */
export const missingBrowser: false | string = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is absent (Debian package chromium; .ci/run installs it)`;

/** Retries `check` until it passes (figures that follow the event stream settle within a second or two). */
export async function eventually(check: () => Promise<void>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export async function logIn(p: Page, account: string, password: string): Promise<void> {
  await p.getByLabel('Account').fill(account);
  await p.getByLabel(/^Password/).fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
}

export interface ConsoleRig {
  t: TestNode;
  browser: Browser;
  /** page errors and Content-Security-Policy violations seen on any page opened with `newPage` */
  pageErrors: string[];
  newPage(width?: number): Promise<Page>;
  shot(p: Page, name: string): Promise<void>;
  byName(kind: string, name: string): Promise<string>;
  stop(): Promise<void>;
}

/** A node with the demo environment and a headless Chromium. */
export async function startConsoleRig(label: string): Promise<ConsoleRig> {
  const shots = process.env.NIMBUS_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), `nimbus-${label}-`));
  mkdirSync(shots, { recursive: true });
  console.log(`# screenshots: ${shots}`);
  const t = await startTestNode();
  const admin = await t.db.db
    .selectFrom('accounts')
    .select('uuid')
    .where('type', '=', 'admin')
    .executeTakeFirstOrThrow();
  assert.ok(
    await createDemoEnvironment(t.node.services, t.node.kindServices, admin.uuid, pino({ level: 'silent' })),
  );
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const pageErrors: string[] = [];
  return {
    t,
    browser,
    pageErrors,
    async newPage(width = 1440) {
      const context = await browser.newContext({ viewport: { width, height: 960 } });
      const p = await context.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      p.on('console', (m) => {
        if (/Content.Security.Policy/i.test(m.text())) pageErrors.push(m.text());
      });
      return p;
    },
    async shot(p, name) {
      await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    },
    async byName(kind, name) {
      const res = await t.admin.get(`/v1/${kind}?q=name=${encodeURIComponent(name)}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(res.body.items[0], `no ${kind} named ${name}`);
      return res.body.items[0].uuid as string;
    },
    async stop() {
      await browser.close();
      await t.stop();
    },
  };
}
