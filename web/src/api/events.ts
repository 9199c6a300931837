/**
 * The live event stream (`GET /v1/events/stream`, Server-Sent Events), shared by every page that
 * listens: one connection while anyone subscribes, none otherwise.
 *
 * Read with fetch, not EventSource: EventSource cannot send the Authorization header, and putting
 * the token in the URL instead would write it into access logs, proxies and the browser history.
 * fetch streams the same text/event-stream body with the header. After a drop it reconnects with
 * `?after=<last id>`, and the server replays what was missed.
 */
import { handleUnauthenticated } from './client';
import { getSession } from './session';
import type { CloudEvent } from './types';

type Listener = (e: CloudEvent) => void;
const listeners = new Set<Listener>();
let stop: (() => void) | undefined;
let lastId: string | undefined;

export function subscribeEvents(listener: Listener): () => void {
  listeners.add(listener);
  if (!stop) stop = follow();
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && stop) {
      stop();
      stop = undefined;
    }
  };
}

/** Parses one SSE block (`id: …\nevent: …\ndata: …`); comments (`: keep-alive`) give nothing. */
export function parseBlock(block: string): CloudEvent | undefined {
  const data = block
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trimStart())
    .join('\n');
  if (!data) return undefined;
  try {
    return JSON.parse(data) as CloudEvent;
  } catch {
    return undefined;
  }
}

function follow(): () => void {
  const abort = new AbortController();
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      const token = getSession()?.token;
      if (!token) return;
      try {
        const res = await fetch(`/v1/events/stream${lastId ? `?after=${lastId}` : ''}`, {
          headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
          signal: abort.signal,
        });
        if (res.status === 401) return handleUnauthenticated();
        if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const e = parseBlock(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (!e) continue;
            lastId = e.id;
            for (const l of listeners) l(e);
          }
        }
      } catch {
        if (stopped) return;
      }
      // the server closed (a restart, a stopping node) or the network dropped: try again soon
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  void run();
  return () => {
    stopped = true;
    abort.abort();
  };
}
