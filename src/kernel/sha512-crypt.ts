/**
 * SHA-512-crypt (`$6$salt$hash`, Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"), the
 * password hash glibc, libxcrypt, busybox and cloud-init's `hashed_passwd` all accept. A
 * generated login password reaches a guest only as this hash: the clear text is shown once to
 * the caller and never stored. Pure (node:crypto's SHA-512 only).
 */
import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS = 5000;

const sha512 = (...parts: Buffer[]) => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `n` bytes of `block` repeated. */
function repeatTo(block: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += block.length) block.copy(out, i, 0, Math.min(block.length, n - i));
  return out;
}

// the order the 64 digest bytes are written in, three at a time (the last one alone)
const ORDER: Array<[number, number, number]> = [];
for (let i = 0; i < 21; i++) {
  const a = (i * 22) % 63;
  ORDER.push([a, (a + 21) % 63, (a + 42) % 63]);
}

function encode(c: Buffer): string {
  let out = '';
  const put = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += ALPHABET[w & 0x3f];
      w >>= 6;
    }
  };
  for (const [x, y, z] of ORDER) put(c[x]!, c[y]!, c[z]!, 4);
  put(0, 0, c[63]!, 2);
  return out;
}

export function sha512Crypt(password: string, salt: string): string {
  const p = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 16), 'utf8');
  const b = sha512(p, s, p);
  const a = createHash('sha512').update(p).update(s).update(repeatTo(b, p.length));
  for (let n = p.length; n > 0; n >>= 1) a.update(n & 1 ? b : p);
  const digestA = a.digest();
  const pSeq = repeatTo(sha512(...Array.from({ length: p.length }, () => p)), p.length);
  const sSeq = repeatTo(sha512(...Array.from({ length: 16 + digestA[0]! }, () => s)), s.length);
  let c = digestA;
  for (let i = 0; i < ROUNDS; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? pSeq : c);
    if (i % 3) h.update(sSeq);
    if (i % 7) h.update(pSeq);
    h.update(i & 1 ? c : pSeq);
    c = h.digest();
  }
  return `$6$${s.toString('utf8')}$${encode(c)}`;
}

/** A hash with a fresh random 16-character salt. */
export function hashPassword(password: string): string {
  const salt = Array.from(randomBytes(16), (x) => ALPHABET[x & 0x3f]).join('');
  return sha512Crypt(password, salt);
}
