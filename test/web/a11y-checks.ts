/**
 * Accessibility checks of a page in Chromium, without a library: every control has an accessible
 * name (Chromium's own accessibility tree, over the DevTools protocol), the page has a language,
 * a title and one main landmark, and text meets WCAG AA contrast (4.5:1, 3:1 for large text)
 * against the background it is drawn on. axe-core, when installed, adds its own rules (a11y.test.ts).
 */
import type { Page } from 'playwright-core';

const NAMED_ROLES = new Set([
  'button',
  'link',
  'textbox',
  'combobox',
  'checkbox',
  'radio',
  'switch',
  'listbox',
  'menuitem',
  'tab',
  'slider',
  'spinbutton',
  'searchbox',
  'image',
  'img',
  'dialog',
  'navigation',
]);

interface AxNode {
  ignored?: boolean;
  backendDOMNodeId?: number;
  role?: { value?: string };
  name?: { value?: string };
  properties?: { name: string; value: { value?: unknown } }[];
}

/** Controls without an accessible name, as `role` (Chromium's computed accessibility tree). */
export async function unnamedControls(page: Page): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: AxNode[] };
    const unnamed = nodes
      .filter((n) => !n.ignored && NAMED_ROLES.has(String(n.role?.value)))
      .filter((n) => !n.properties?.some((p) => p.name === 'hidden' && p.value.value === true))
      .filter((n) => !String(n.name?.value ?? '').trim());
    const out: string[] = [];
    for (const n of unnamed) {
      const { node } = (await cdp.send('DOM.describeNode', { backendNodeId: n.backendDOMNodeId })) as {
        node: { nodeName: string; attributes?: string[] };
      };
      const attrs = node.attributes ?? [];
      // an inline icon (svg without role="img") is decoration, as axe counts it; an <img> is not
      const decorative = node.nodeName.toLowerCase() === 'svg' && attrs[attrs.indexOf('role') + 1] !== 'img';
      if (!decorative) out.push(`${n.role?.value} (<${node.nodeName.toLowerCase()}>)`);
    }
    return out;
  } finally {
    await cdp.detach();
  }
}

/** Text whose contrast with its background is under WCAG AA: `"text" 3.2:1 (needs 4.5)`. */
export async function lowContrastText(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const doc = (globalThis as any).document;
    const win = globalThis as any;
    type Rgba = [number, number, number, number];
    const parse = (c: string): Rgba => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return [0, 0, 0, 0];
      const p = m[1]!
        .split(/[ ,/]+/)
        .filter(Boolean)
        .map(Number);
      return [p[0]!, p[1]!, p[2]!, p[3] ?? 1];
    };
    const over = (top: Rgba, under: Rgba): Rgba => {
      const a = top[3];
      return [0, 1, 2].map((i) => top[i]! * a + under[i]! * (1 - a)).concat(1) as Rgba;
    };
    const lum = (c: Rgba) => {
      const ch = c.slice(0, 3).map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * ch[0]! + 0.7152 * ch[1]! + 0.0722 * ch[2]!;
    };
    /** the background drawn behind an element: its own and its ancestors', composited */
    const background = (el: any): Rgba => {
      const layers: Rgba[] = [];
      for (let e = el; e; e = e.parentElement) {
        const bg = parse(win.getComputedStyle(e).backgroundColor);
        if (bg[3] > 0) layers.push(bg);
        if (bg[3] >= 1) break;
      }
      let out: Rgba = [255, 255, 255, 1];
      for (const l of layers.reverse()) out = over(l, out);
      return out;
    };
    const problems: string[] = [];
    const walker = doc.createTreeWalker(doc.body, 4 /* NodeFilter.SHOW_TEXT */);
    const seen = new Set();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      const text = String(n.textContent ?? '').trim();
      if (!el || !text || seen.has(el)) continue;
      seen.add(el);
      const style = win.getComputedStyle(el);
      const rect = el.getBoundingClientRect();
      if (
        rect.width === 0 ||
        rect.height === 0 ||
        style.visibility === 'hidden' ||
        Number(style.opacity) === 0
      )
        continue;
      // WCAG exempts inactive controls and what is hidden from assistive technology
      if (el.closest('[aria-hidden="true"], :disabled, [data-disabled="true"], [aria-disabled="true"]'))
        continue;
      const bg = background(el);
      const fg = over(parse(style.color), bg);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      const ratio = (a! + 0.05) / (b! + 0.05);
      const size = Number.parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      const needs = large ? 3 : 4.5;
      if (ratio < needs) problems.push(`"${text.slice(0, 40)}" ${ratio.toFixed(2)}:1 (needs ${needs})`);
    }
    return problems;
  });
}

/** The page's language, title and main landmark. */
export async function pageBasics(page: Page): Promise<string[]> {
  const problems: string[] = [];
  if (!(await page.locator('html[lang]').count())) problems.push('<html> has no lang');
  if (!(await page.title()).trim()) problems.push('no <title>');
  const mains = await page.getByRole('main').count();
  if (mains !== 1) problems.push(`${mains} main landmarks`);
  return problems;
}
