import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { signatureHeader, verifySignature } from './signature.js';

test('a signature is HMAC-SHA256 of "<t>.<body>" in hex, and verifies only with the same secret, body and a fresh t', () => {
  const now = new Date('2026-12-07T12:00:00Z');
  const body = '{"type":"lease.expiring"}';
  const header = signatureHeader('s3cret-s3cret-s3cret', body, now);
  const t = Math.floor(now.getTime() / 1000);
  const hex = createHmac('sha256', 's3cret-s3cret-s3cret').update(`${t}.${body}`).digest('hex');
  assert.equal(header, `t=${t},v1=${hex}`);
  assert.equal(verifySignature('s3cret-s3cret-s3cret', header, body, now), true);
  assert.equal(verifySignature('another-secret-xx', header, body, now), false, 'another secret');
  assert.equal(verifySignature('s3cret-s3cret-s3cret', header, `${body} `, now), false, 'a changed body');
  const later = new Date(now.getTime() + 301_000);
  assert.equal(verifySignature('s3cret-s3cret-s3cret', header, body, later), false, 'a replay 5 min later');
  assert.equal(verifySignature('s3cret-s3cret-s3cret', undefined, body, now), false);
  assert.equal(verifySignature('s3cret-s3cret-s3cret', 't=x,v1=zz', body, now), false);
});
