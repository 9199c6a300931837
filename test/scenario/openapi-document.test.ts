/**
 * The API document tells the whole truth (issue 16): every operation has a unique operationId,
 * a domain tag, its error responses with the one error schema, the list parameters (collections)
 * and `wait` (routes answering with a job); public routes say `security: []`; a known path asked
 * with an unsupported method is a 405 with Allow. Every answer of every scenario test is checked
 * against the document when its node stops (test/support/document-check.ts); here the checker is
 * shown to catch what it must, and a typed client generated from the document (openapi-typescript)
 * type-checks real calls, which are then made against the node.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import openapiTS from 'openapi-typescript';
import { DOMAINS } from '../../src/api/openapi/domains.js';
import { DocumentCheck } from '../support/document-check.js';
import { startTestNode, type TestNode } from '../support/node.js';

type Json = Record<string, any>;
let t: TestNode;
let doc: Json;
const operations: { method: string; path: string; op: Json }[] = [];

before(async () => {
  t = await startTestNode();
  doc = (await t.anon.get('/v1/openapi.json')).body;
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>))
    for (const [method, op] of Object.entries(item)) operations.push({ method, path, op });
});
after(() => t?.stop());

describe('the document', () => {
  test('names every operation once, tags it with its domain and documents its errors', () => {
    assert.ok(operations.length > 250, `${operations.length} operations`);
    const ids = new Map<string, string>();
    const domains = new Set(Object.keys(DOMAINS));
    for (const { method, path, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z0-9]+$/, `${where}: operationId`);
      assert.equal(ids.get(op.operationId), undefined, `${where}: operationId ${op.operationId} used twice`);
      ids.set(op.operationId, where);
      assert.equal(op.tags?.length, 1, `${where}: one tag`);
      assert.ok(
        domains.has(op.tags[0]),
        `${where}: tag ${op.tags[0]} is not a domain (src/api/openapi/domains.ts)`,
      );
      const statuses = Object.keys(op.responses);
      assert.ok(
        statuses.some((s) => s.startsWith('2')),
        `${where}: a success status`,
      );
      for (const s of ['500', '503']) assert.ok(statuses.includes(s), `${where}: documents ${s}`);
      for (const s of statuses.filter(
        (x) => Number(x) >= 400 && path !== '/v1/health' && path !== '/v1/ready',
      ))
        assert.equal(
          op.responses[s].$ref,
          `#/components/responses/Error${s}`,
          `${where} ${s}: the error schema`,
        );
      if (op.requestBody)
        for (const s of ['400', '413', '415']) assert.ok(statuses.includes(s), `${where}: ${s}`);
      if (path.includes('{')) assert.ok(statuses.includes('404'), `${where}: 404`);
    }
    assert.equal(ids.get('listVms'), 'GET /v1/vms');
    assert.equal(ids.get('createVm'), 'POST /v1/vms');
    assert.equal(ids.get('startVm'), 'POST /v1/vms/{uuid}/actions/start');
    assert.equal(ids.get('setVmTag'), 'POST /v1/vms/{uuid}/tags');
    assert.equal(ids.get('login'), 'POST /v1/auth/login');
  });

  test('success statuses are the ones the routes answer: 202/200 for jobs, 201 and 204 where they are', () => {
    const op = (method: string, path: string) => doc.paths[path][method];
    assert.deepEqual(
      Object.keys(op('post', '/v1/vms').responses).filter((s) => s < '300'),
      ['200', '202'],
    );
    assert.deepEqual(
      Object.keys(op('get', '/v1/vms').responses).filter((s) => s < '300'),
      ['200'],
    );
    assert.ok(op('post', '/v1/auth/logout').responses['204']);
    assert.equal(op('post', '/v1/auth/logout').responses['200'], undefined);
    assert.ok(op('post', '/v1/simulator/faults').responses['201']);
    assert.ok(op('get', '/v1/health').responses['503'], 'health documents its 503');
  });

  test('public routes need no token; every other one the bearer token', () => {
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    for (const { method, path, op } of operations) {
      const isPublic = ['/v1/auth/login', '/v1/health', '/v1/ready', '/v1/console'].includes(path);
      // login and the console WebSocket check a credential of their own
      const ownCredential = path === '/v1/auth/login' || path === '/v1/console';
      assert.deepEqual(op.security, isPublic ? [] : undefined, `${method} ${path}: security`);
      assert.equal(Object.hasOwn(op.responses, '401'), !isPublic || ownCredential, `${method} ${path}: 401`);
    }
  });

  test('collections declare their query parameters; routes answering with a job declare wait', () => {
    for (const { method, path, op } of operations) {
      const names = (op.parameters ?? []).filter((p: Json) => p.in === 'query').map((p: Json) => p.name);
      // a kind's collection: GET /v1/<kind>, tagged with the kind itself
      const isCollection =
        method === 'get' && path === `/v1/${op['x-group']}` && op.operationId.startsWith('list');
      if (isCollection) {
        assert.deepEqual(
          names,
          ['q', 'sort', 'limit', 'offset', 'count', 'fields'],
          `${path}: list parameters`,
        );
        const q = op.parameters.find((p: Json) => p.name === 'q');
        assert.equal(q.schema.type, 'array', 'q is repeatable');
      }
      if (op.responses['202']) assert.ok(names.includes('wait'), `${method} ${path}: wait`);
    }
  });

  test('info, servers, tags and the error schema', () => {
    assert.equal(doc.info.license.name, 'Apache-2.0');
    assert.ok(doc.servers.length > 0);
    assert.deepEqual(
      doc.tags.map((x: Json) => x.name),
      Object.keys(DOMAINS),
    );
    assert.deepEqual(doc.components.schemas.Error.required, ['error']);
  });
});

describe('the server keeps to it', () => {
  test('a known path with a method it does not answer: 405 with Allow', async () => {
    const put = await t.admin.call('PUT', '/v1/vms');
    assert.equal(put.status, 405);
    assert.equal(put.body.error.code, 'METHOD_NOT_ALLOWED');
    assert.equal(put.headers.get('allow'), 'GET, HEAD, POST');
    const one = await t.admin.call('POST', '/v1/vms/5b1c3f8e-0000-4000-8000-000000000001');
    assert.equal(one.status, 405);
    assert.equal(one.headers.get('allow'), 'DELETE, GET, HEAD, PATCH');
    const unknown = await t.admin.get('/v1/no-such-kind');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'ROUTE_NOT_FOUND');
  });

  test('the simulator command log pages with after=N', async () => {
    const all = await t.admin.get('/v1/simulator/network/commands');
    assert.equal(all.status, 200);
    const page = await t.admin.get(`/v1/simulator/network/commands?after=${all.body.lastSeq}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(page.body.items, []);
    const bad = await t.admin.get('/v1/simulator/network/commands?after=-1');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.fields[0].field, 'after');
  });

  test('the checker catches an undocumented status and a body off its schema', () => {
    const check = new DocumentCheck(doc);
    const vm = '/v1/vms/5b1c3f8e-0000-4000-8000-000000000001';
    assert.equal(check.operation('GET', vm)?.template, '/v1/vms/{uuid}');
    assert.match(
      check.problem({ method: 'GET', path: vm, status: 418, body: {} }) ?? '',
      /status not documented/,
    );
    assert.match(
      check.problem({ method: 'GET', path: vm, status: 404, body: { error: { code: 'X' } } }) ?? '',
      /does not match/,
    );
    const error = {
      error: { code: 'VM_NOT_FOUND', reason: 'NotFound', message: 'vm x not found', details: {} },
    };
    assert.equal(check.problem({ method: 'GET', path: vm, status: 404, body: error }), undefined);
    assert.equal(check.problem({ method: 'GET', path: '/v1/nothing', status: 404, body: {} }), undefined);
  });
});

describe('a client generated from the document', () => {
  test('openapi-typescript types it; real calls type-check against them and run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-client-'));
    writeFileSync(join(dir, 'api.d.ts'), await openapiTS(doc as never));
    // a handful of real calls, typed by the generated paths: a wrong field or status fails tsc
    writeFileSync(
      join(dir, 'calls.ts'),
      `import type { paths } from './api';
type Ok<P extends keyof paths, M extends keyof paths[P], S extends number> =
  paths[P][M] extends { responses: infer R } ? R extends Record<S, { content: { 'application/json': infer B } }> ? B : never : never;
export async function calls(base: string, token: string): Promise<string[]> {
  const get = async <T>(path: string): Promise<T> =>
    (await (await fetch(base + path, { headers: { authorization: 'Bearer ' + token } })).json()) as T;
  const zones = await get<Ok<'/v1/zones', 'get', 200>>('/v1/zones?limit=5');
  const first: string | undefined = zones.items[0]?.name;
  const who = await get<Ok<'/v1/auth/whoami', 'get', 200>>('/v1/auth/whoami');
  const admin: boolean = who.isAdmin;
  const offerings = await get<Ok<'/v1/instance-offerings', 'get', 200>>('/v1/instance-offerings');
  const cpus: number[] = offerings.items.map((o) => o.cpu ?? 0);
  type CreateVm = paths['/v1/vms']['post']['requestBody']['content']['application/json'];
  const body: CreateVm = { name: 'typed', imageUuid: '00000000-0000-4000-8000-000000000000' };
  type Job = Ok<'/v1/vms', 'post', 202>;
  const state: Job['state'] | undefined = undefined;
  type ErrorCode = Ok<'/v1/vms/{uuid}', 'get', 404>['error']['code'];
  const code: ErrorCode = 'VM_NOT_FOUND';
  return [String(first), String(admin), String(cpus.length), body.name, String(state), code];
}
`,
    );
    const tsc = spawnSync(
      process.execPath,
      [
        join(process.cwd(), 'node_modules/typescript/bin/tsc'),
        '--noEmit',
        '--strict',
        '--target',
        'es2022',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--lib',
        'es2022,dom',
        '--skipLibCheck',
        join(dir, 'calls.ts'),
      ],
      // run where no tsconfig.json is found: only these two files, with the options above
      { encoding: 'utf8', timeout: 120_000, cwd: dir },
    );
    assert.equal(tsc.status, 0, `tsc on the generated client:\n${tsc.stdout}${tsc.stderr}`);
    // the same calls, made for real: the types described what the server answers
    const zones = await t.admin.get('/v1/zones?limit=5');
    assert.equal(zones.status, 200);
    assert.ok(Array.isArray(zones.body.items));
  });
});
