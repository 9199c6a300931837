/**
 * What every command needs from the outside world, gathered in one place so commands never read
 * process globals themselves: where to write, whether a human is watching, how to reach the server.
 */
import pc from 'picocolors';
import { ApiClient } from './http.js';
import { resolveConnection } from './profile.js';

export interface Ctx {
  env: Record<string, string | undefined>;
  out(text: string): void;
  err(text: string): void;
  /** a person is watching a terminal: spinners and colors are welcome */
  interactive: boolean;
  /** colours on stderr (error labels) */
  color: boolean;
  /** colours on stdout (states in tables): only when stdout itself is a terminal */
  colorOut: boolean;
  /** built on first use, so `--help` and usage errors never need a profile */
  client(): ApiClient;
}

export function processCtx(): Ctx {
  let client: ApiClient | undefined;
  return {
    env: process.env,
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    // ora loops forever clearing lines on a terminal that reports 0 columns (some CI pseudo-ttys).
    interactive: Boolean(process.stdout.isTTY && process.stderr.isTTY && (process.stderr.columns ?? 0) > 0),
    color: pc.isColorSupported && Boolean(process.stderr.isTTY),
    colorOut: pc.isColorSupported && Boolean(process.stdout.isTTY),
    client() {
      if (!client) {
        const conn = resolveConnection(process.env);
        client = new ApiClient(conn.url, conn.token);
      }
      return client;
    },
  };
}
