import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { KINDS } from './catalog.js';
import { completionWords } from './completion.js';
import type { Ctx } from './context.js';
import { UsageError } from './errors.js';
import { quotaBody, sseData } from './extras.js';
import { renderPage, renderResource } from './output.js';
import { buildProgram } from './program.js';

const quotas = KINDS.find((k) => k.kind === 'quotas')!;
const vms = KINDS.find((k) => k.kind === 'vms')!;

const ctx: Ctx = {
  env: {},
  out: () => {},
  err: () => {},
  interactive: false,
  color: false,
  colorOut: false,
  client: () => {
    throw new Error('no server in this test');
  },
};

describe('quota set', () => {
  test('name=value pairs typed by the quota schema, sizes with suffixes', () => {
    assert.deepEqual(quotaBody(quotas, ['vm.num=50', 'vm.memory=64G', 'volume.capacity=1.5T']), {
      'vm.num': 50,
      'vm.memory': 64 * 1024 ** 3,
      'volume.capacity': 1.5 * 1024 ** 4,
    });
  });

  test('every bad pair is reported at once', () => {
    assert.throws(
      () => quotaBody(quotas, ['vm.bogus=1', 'vm.num=many', 'vm.cpu']),
      (err: unknown) =>
        err instanceof UsageError &&
        /'vm\.bogus' is not a quota/.test(err.message) &&
        /vm\.num: expected an integer/.test(err.message) &&
        /'vm\.cpu' needs a value/.test(err.message),
    );
    assert.throws(() => quotaBody(quotas, []), /at least one limit/);
  });
});

describe('event stream parsing', () => {
  test('data lines of each event, across chunk boundaries; comments and keep-alives skipped', async () => {
    const chunks = [
      ': connected\n\nid: 1\nevent: vm.created\nda',
      'ta: {"a":1}\n\n: keep-alive\n\n',
      'data: x\ndata: y\n\n',
    ];
    const got: string[] = [];
    for await (const d of sseData(Readable.from(chunks.map((c) => Buffer.from(c))))) got.push(d);
    assert.deepEqual(got, ['{"a":1}', 'x\ny']);
  });
});

describe('shell completion', () => {
  const program = buildProgram(ctx);
  test('nouns, then verbs, then flags of the command named so far', () => {
    assert.ok(completionWords(program, ['v']).includes('vm'));
    assert.ok(completionWords(program, ['v']).includes('volume'));
    assert.deepEqual(completionWords(program, ['vm', 'st']), ['start', 'stop']);
    const flags = completionWords(program, ['vm', 'create', '--im']);
    assert.deepEqual(flags, ['--image', '--image-uuid']);
    assert.ok(completionWords(program, ['quota', '']).includes('set'));
  });
});

describe('value and csv output', () => {
  const page = {
    items: [
      { uuid: 'u1', name: 'a,b', memory: 1024 ** 3, state: 'Running' },
      { uuid: 'u2', name: 'c', memory: 2 * 1024 ** 3, state: 'Stopped' },
    ],
  };
  test('value: the chosen columns space-separated, a line per row; csv quotes what needs it', async () => {
    assert.equal(
      await renderPage(vms, page, 'value', { fields: ['uuid', 'state'] }),
      'u1 Running\nu2 Stopped',
    );
    assert.equal(
      await renderPage(vms, page, 'csv', { fields: ['name', 'memory'] }),
      'name,memory\n"a,b",1073741824\nc,2147483648',
    );
  });
  test('json with -c keeps the page, narrows the items, leaves bytes as bytes', async () => {
    const out = JSON.parse(await renderPage(vms, page, 'json', { fields: ['name', 'memory'] }));
    assert.deepEqual(out.items, [
      { name: 'a,b', memory: 1024 ** 3 },
      { name: 'c', memory: 2 * 1024 ** 3 },
    ]);
    assert.equal(
      await renderResource(vms, page.items[0], 'value', { fields: ['name', 'state'] }),
      'a,b\nRunning',
    );
  });
});
