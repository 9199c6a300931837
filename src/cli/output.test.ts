import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from 'typebox';
import YAML from 'yaml';
import { Bytes } from '../contract/common.js';
import type { KindContract } from '../contract/kinds.js';
import {
  ApiError,
  ConnectionError,
  describeError,
  JobFailedError,
  LocalError,
  UsageError,
} from './errors.js';
import {
  bytesFields,
  cellText,
  formatBytes,
  renderJobAccepted,
  renderPage,
  renderResource,
  valueAt,
} from './output.js';

const disks: KindContract = {
  kind: 'disks',
  singular: 'disk',
  summary: 'a test kind',
  resource: Type.Object({
    uuid: Type.String(),
    name: Type.String(),
    size: Bytes('size'),
    meta: Type.Unknown(),
  }),
  create: Type.Object({ name: Type.String(), cache: Bytes('cache size') }),
  deletable: true,
  taggable: false,
  columns: ['name', 'size', 'state'],
  adminOnly: false,
};

const page = {
  items: [
    { uuid: 'u1', name: 'd1', size: 64 * 1024 ** 3, state: 'Ready', meta: { zone: { name: 'z1' } } },
    { uuid: 'u2', name: 'd2', size: 1536, state: null, meta: null },
  ],
  limit: 2,
  offset: 0,
};

const rows = (text: string) => text.split('\n').filter((l) => l.startsWith('│'));
const cells = (line: string) =>
  line
    .split('│')
    .slice(1, -1)
    .map((c) => c.trim());

describe('output', () => {
  test('sizes read as binary units', async () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(64 * 1024 ** 3), '64 GiB');
    assert.equal(formatBytes(1.25 * 1024 ** 4), '1.3 TiB');
  });

  test('byte fields come from x-unit in the resource and its bodies', async () => {
    assert.deepEqual([...bytesFields(disks)].sort(), ['cache', 'size']);
  });

  test('a table shows the contract columns, friendly sizes, blanks for null', async () => {
    const text = await renderPage(disks, page, 'table');
    const [head, first, second] = rows(text).map(cells);
    assert.deepEqual(head, ['name', 'size', 'state']);
    assert.deepEqual(first, ['d1', '64 GiB', 'Ready']);
    assert.deepEqual(second, ['d2', '1.5 KiB', '']);
    assert.match(text, /more may follow: --offset 2/);
  });

  test('--fields picks columns, nested paths included; totals are shown', async () => {
    const text = await renderPage(disks, { ...page, total: 7 }, 'table', {
      fields: ['uuid', 'meta.zone.name'],
    });
    assert.deepEqual(rows(text).map(cells), [
      ['uuid', 'meta.zone.name'],
      ['u1', 'z1'],
      ['u2', ''],
    ]);
    assert.match(text, /1-2 of 7$/);
    assert.equal(valueAt({ a: { b: 1 } }, 'a.b'), 1);
    assert.equal(valueAt({ a: null }, 'a.b'), undefined);
  });

  test('json and yaml print the whole page unchanged (sizes stay bytes)', async () => {
    assert.deepEqual(JSON.parse(await renderPage(disks, page, 'json')), page);
    assert.deepEqual(YAML.parse(await renderPage(disks, page, 'yaml')), page);
    assert.equal(await renderPage(disks, { items: [], limit: 100, offset: 0 }, 'table'), 'no disks found');
  });

  test('get shows a field/value table', async () => {
    const text = await renderResource(disks, page.items[0], 'table');
    const table = rows(text).map(cells);
    assert.deepEqual(table[0], ['field', 'value']);
    assert.deepEqual(table[3], ['size', '64 GiB']);
    assert.deepEqual(table[5], ['meta', '{"zone":{"name":"z1"}}']);
    assert.deepEqual(JSON.parse(await renderResource(disks, page.items[0], 'json')), page.items[0]);
    assert.equal(cellText(true, false), 'true');
  });

  test('an accepted job shows how to follow it', async () => {
    const job = { uuid: 'j1', state: 'Pending', kind: 'disk.create', resourceUuid: 'u9' };
    assert.equal(
      await renderJobAccepted(job, job, 'table'),
      'job j1 Pending (disk.create u9)\nfollow it with: nimbus job wait j1',
    );
    assert.deepEqual(JSON.parse(await renderJobAccepted(job, job, 'json')), job);
  });
});

describe('error messages', () => {
  test('API errors: code, message, every bad field; exit 1', async () => {
    const err = new ApiError(400, {
      code: 'INVALID_REQUEST',
      message: '2 invalid fields',
      details: {
        fields: [
          { field: 'name', problem: 'too long' },
          { field: 'cpu', problem: 'must be at least 1' },
        ],
      },
    });
    assert.deepEqual(describeError(err), {
      text: 'error INVALID_REQUEST: 2 invalid fields\n  - name: too long\n  - cpu: must be at least 1',
      exitCode: 1,
    });
    assert.match(
      describeError(new ApiError(401, { code: 'UNAUTHENTICATED', message: 'no' })).text,
      /nimbus login/,
    );
  });

  test('a 401 speaks of sessions, not of HTTP headers, and gives its hint once', async () => {
    const api = describeError(
      new ApiError(401, {
        code: 'UNAUTHENTICATED',
        message: 'send Authorization: Bearer <token> (get one from POST /v1/auth/login)',
      }),
    ).text;
    assert.doesNotMatch(api, /Authorization|Bearer|\/v1\//);
    assert.equal(api.match(/nimbus login/g)?.length, 1);
    const revoked = describeError(
      new ApiError(401, {
        code: 'TOKEN_INVALID',
        message: 'the token is unknown or was revoked; log in again',
      }),
    ).text;
    assert.equal(revoked, 'error TOKEN_INVALID: the token is unknown or was revoked; log in again');
    const login = new ApiError(401, { code: 'LOGIN_FAILED', message: 'wrong account, user or password' });
    login.duringLogin = true;
    assert.equal(describeError(login).text, 'error LOGIN_FAILED: wrong account, user or password');
  });

  test('failed jobs show the cause chain', async () => {
    const err = new JobFailedError('j1', 'Failed', {
      code: 'A',
      message: 'outer',
      cause: { code: 'B', message: 'middle', cause: { code: 'C', message: 'inner' } },
    });
    assert.deepEqual(describeError(err), {
      text: 'error A: outer\n  caused by B: middle\n  caused by C: inner\n  (job j1 Failed)',
      exitCode: 1,
    });
    assert.match(
      describeError(new JobFailedError('j2', 'Cancelled', undefined)).text,
      /^error JOB_CANCELLED: /,
    );
  });

  test('usage errors exit 2; others exit 1 and never show a stack', async () => {
    assert.deepEqual(describeError(new UsageError('bad')), { text: 'error: bad', exitCode: 2 });
    assert.equal(describeError(new LocalError('NOT_FOUND', 'no x')).text, 'error NOT_FOUND: no x');
    const down = describeError(new ConnectionError('http://h:1', 'connection refused')).text;
    assert.match(down, /http:\/\/h:1 \(connection refused\)[\s\S]*nimbus login --url/);
    const boom = describeError(new TypeError('boom'));
    assert.deepEqual(boom, { text: 'error: boom', exitCode: 1 });
  });
});
