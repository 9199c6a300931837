/** Resource identifiers: UUID v7, time-ordered so that primary-key indexes stay append-mostly. */
import { randomBytes } from 'node:crypto';
import { v7 } from 'uuid';

export function newId(): string {
  return v7();
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** `bytes` random bytes as hex: short suffixes that tell generated names apart (pool-a1b2c3). */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}
