/**
 * Which methods each route path answers, so that a known path asked with a method it does not
 * support gets 405 with `Allow` instead of a 404 (server.ts, the not-found handler).
 */
import type { FastifyInstance } from 'fastify';

interface PathMethods {
  pattern: RegExp;
  methods: Set<string>;
}

/** `/v1/vms/:uuid/actions/start` → a regular expression matching concrete paths */
function patternOf(url: string): RegExp {
  const parts = url.split('/').map((seg) => {
    if (seg === '*') return '.*';
    if (seg.startsWith(':')) return '[^/]+';
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}/?$`);
}

export function registerMethodTable(app: FastifyInstance): { allowedFor(path: string): string[] } {
  const byUrl = new Map<string, PathMethods>();
  app.addHook('onRoute', (route) => {
    // hidden routes (the web console's catch-all pages, /metrics) are not API paths: a method
    // they do not answer on some /v1 path is no reason for a 405
    if ((route.schema as { hide?: boolean } | undefined)?.hide) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    let entry = byUrl.get(route.url);
    if (!entry) {
      entry = { pattern: patternOf(route.url), methods: new Set() };
      byUrl.set(route.url, entry);
    }
    for (const m of methods) entry.methods.add(m.toUpperCase());
  });
  return {
    allowedFor(path: string): string[] {
      const allowed = new Set<string>();
      for (const { pattern, methods } of byUrl.values())
        if (pattern.test(path)) for (const m of methods) allowed.add(m);
      return [...allowed].sort();
    },
  };
}
