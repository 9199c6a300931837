/**
 * The login session of this browser tab.
 *
 * The token is kept in sessionStorage: it survives a reload of the tab but not its closing, is not
 * shared with other tabs or windows, and is never sent by the browser on its own (unlike a
 * cookie), so another site cannot make requests with it (no CSRF). Like anything a script can
 * read it is exposed to an XSS in the console itself, which the page's Content-Security-Policy
 * (script-src 'self') makes hard; localStorage would keep it on disk long after the tab closed.
 */
import { useSyncExternalStore } from 'react';

export interface Session {
  token: string;
  expiresAt: string;
  accountUuid: string;
  userUuid: string;
  isAdmin: boolean;
  account: string;
  user: string;
}

const KEY = 'nimbus.session';
const listeners = new Set<() => void>();
let current: Session | null = read();

function read(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function getSession(): Session | null {
  return current;
}

let loggedOut = false;

/** `logout`: the user ended it (the login page then opens without remembering a page to return to). */
export function setSession(s: Session | null, reason?: 'logout'): void {
  current = s;
  loggedOut = s === null && reason === 'logout';
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  for (const l of listeners) l();
}

export function endedByLogout(): boolean {
  return loggedOut;
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function useSession(): Session | null {
  return useSyncExternalStore(subscribe, getSession);
}
