/**
 * Keystone v3 over HTTP: discovery, token issue/validate/revoke, the catalog behind a proxy,
 * application credentials, and the read-only views of projects, users and roles.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  keystoneToken,
  type OpenStackNode,
  osCall,
  startOpenStackNode,
  TENANT,
} from './openstack-fixtures.js';

let n: OpenStackNode;
let base: string;
let token: string;
let adminToken: string;

before(async () => {
  n = await startOpenStackNode('osid');
  base = n.t.url;
  token = (await keystoneToken(base)).token;
  adminToken = (
    await keystoneToken(base, { user: 'admin', project: 'admin', password: 'admin-test-password' })
  ).token;
});
after(() => n.t.stop());

const nova = (
  method: string,
  path: string,
  body?: unknown,
  tok = token,
  headers: Record<string, string> = {},
) => osCall(`${base}/compute/v2.1${path}`, method, tok, body, headers);
describe('identity (Keystone v3)', () => {
  test('discovery: /identity is 300 with v3, /identity/v3 is the version, both without a token', async () => {
    const root = await osCall(`${base}/identity`, 'GET', undefined);
    assert.equal(root.status, 300);
    assert.equal(root.body.versions.values[0].id, 'v3.14');
    const v3 = await osCall(`${base}/identity/v3`, 'GET', undefined);
    assert.equal(v3.status, 200);
    assert.equal(v3.body.version.links[0].href, `${base}/identity/v3/`);
  });

  test('a token is project-scoped, with roles and a catalog at the URL the client used', async () => {
    const res = await osCall(
      `${base}/identity/v3/auth/tokens`,
      'POST',
      undefined,
      {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'demo', domain: { id: 'default' }, password: TENANT.password } },
          },
          scope: { project: { name: 'demo', domain: { id: 'default' } } },
        },
      },
      { 'x-forwarded-host': 'cloud.example:8443', 'x-forwarded-proto': 'https' },
    );
    assert.equal(res.status, 201);
    const t = res.body.token;
    assert.equal(t.project.name, 'demo');
    assert.deepEqual(
      t.roles.map((r: any) => r.name),
      ['member', 'reader'],
    );
    const compute = t.catalog.find((s: any) => s.type === 'compute');
    assert.equal(
      compute.endpoints.find((e: any) => e.interface === 'public').url,
      'https://cloud.example:8443/compute/v2.1',
    );
    const admin = await keystoneToken(base, {
      user: 'admin',
      project: 'admin',
      password: 'admin-test-password',
    });
    assert.ok(admin.body.token.roles.some((r: any) => r.name === 'admin'));
  });

  test('a wrong password is 401 in Keystone’s error shape; another account’s project too', async () => {
    const bad = await osCall(`${base}/identity/v3/auth/tokens`, 'POST', undefined, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'demo', domain: { name: 'Default' }, password: 'nope' } },
        },
      },
    });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, 401);
    assert.equal(bad.body.error.title, 'Unauthorized');
    const other = await osCall(`${base}/identity/v3/auth/tokens`, 'POST', undefined, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'demo', domain: { name: 'Default' }, password: TENANT.password } },
        },
        scope: { project: { name: 'admin', domain: { name: 'Default' } } },
      },
    });
    assert.equal(other.status, 401);
  });

  test('validate with X-Subject-Token, then revoke: the token stops working everywhere', async () => {
    const { token: t } = await keystoneToken(base);
    const shown = await osCall(`${base}/identity/v3/auth/tokens`, 'GET', t, undefined, {
      'x-subject-token': t,
    });
    assert.equal(shown.status, 200);
    assert.equal(shown.body.token.user.name, 'demo');
    const head = await osCall(`${base}/identity/v3/auth/tokens`, 'HEAD', t, undefined, {
      'x-subject-token': t,
    });
    assert.equal(head.status, 200);
    // a tenant may not look at the admin's token
    const foreign = await osCall(`${base}/identity/v3/auth/tokens`, 'GET', t, undefined, {
      'x-subject-token': adminToken,
    });
    assert.equal(foreign.status, 403);
    const revoked = await osCall(`${base}/identity/v3/auth/tokens`, 'DELETE', t, undefined, {
      'x-subject-token': t,
    });
    assert.equal(revoked.status, 204);
    assert.equal((await nova('GET', '/flavors', undefined, t)).status, 401);
    const native = await fetch(`${base}/v1/auth/whoami`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal(native.status, 401);
  });

  test('application credentials: made by a user, log in as it on its project, refused once deleted', async () => {
    const { body } = await keystoneToken(base);
    const userId = body.token.user.id;
    const path = `${base}/identity/v3/users/${userId}/application_credentials`;
    const made = await osCall(path, 'POST', token, { application_credential: { name: 'ci' } });
    assert.equal(made.status, 201);
    const { id, secret } = made.body.application_credential;
    assert.ok(secret.length >= 32);
    const listed = await osCall(path, 'GET', token);
    assert.deepEqual(
      listed.body.application_credentials.map((c: any) => [c.name, c.secret]),
      [['ci', undefined]],
    );
    // another user may not make or read them
    assert.equal((await osCall(path, 'GET', adminToken)).status, 403);
    const login = (s: string) =>
      osCall(`${base}/identity/v3/auth/tokens`, 'POST', undefined, {
        auth: {
          identity: { methods: ['application_credential'], application_credential: { id, secret: s } },
        },
      });
    const ok = await login(secret);
    assert.equal(ok.status, 201);
    assert.equal(ok.body.token.project.id, body.token.project.id);
    assert.equal((await nova('GET', '/flavors', undefined, ok.headers.get('x-subject-token')!)).status, 200);
    assert.equal((await login('wrong')).status, 401);
    assert.equal((await osCall(`${path}/${id}`, 'DELETE', token)).status, 204);
    assert.equal((await login(secret)).status, 401);
  });

  test('projects and users: a tenant sees its own, the admin sees every one', async () => {
    const mine = await osCall(`${base}/identity/v3/projects`, 'GET', token);
    assert.deepEqual(
      mine.body.projects.map((p: any) => p.name),
      ['demo'],
    );
    const all = await osCall(`${base}/identity/v3/projects`, 'GET', adminToken);
    assert.deepEqual(all.body.projects.map((p: any) => p.name).sort(), ['admin', 'demo']);
    const users = await osCall(`${base}/identity/v3/users`, 'GET', token);
    assert.deepEqual(
      users.body.users.map((u: any) => u.name),
      ['demo'],
    );
    const roles = await osCall(`${base}/identity/v3/roles`, 'GET', token);
    assert.deepEqual(
      roles.body.roles.map((r: any) => r.name),
      ['admin', 'member', 'reader'],
    );
  });
});
