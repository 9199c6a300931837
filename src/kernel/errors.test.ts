import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asCloudError, CloudError, toErrorBody } from './errors.js';

// what the pg driver throws: an Error with a SQLSTATE code and a severity
const dbError = () =>
  Object.assign(new Error('column "account_uuid" does not exist'), { code: '42703', severity: 'ERROR' });

test('a database error becomes INTERNAL_ERROR without its text, keeping the SQLSTATE', () => {
  const body = toErrorBody(dbError());
  assert.equal(body.code, 'INTERNAL_ERROR');
  assert.doesNotMatch(body.message, /account_uuid|column/);
  assert.match(body.message, /42703/);
  assert.doesNotMatch(asCloudError(dbError()).message, /account_uuid/);
  const wrapped = new CloudError('Conflict', 'X', 'x', { cause: dbError() });
  assert.doesNotMatch(JSON.stringify(wrapped.toBody()), /account_uuid/);
});

test('other errors keep their message (programming errors are not database text)', () => {
  assert.equal(toErrorBody(new TypeError('oops')).message, 'oops');
  assert.equal(toErrorBody(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })).message, 'refused');
});
