/**
 * Nova keypairs (os-keypairs): a user's SSH public keys by name (openstack_keypairs). A create
 * without a public key makes an RSA key pair here and returns its private key once, as Nova
 * before 2.92 does; only the public key is kept. A server created with `key_name` gets the key
 * through cloud-init user-data on its config drive (cloudConfigWithKey).
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { callerOf } from '../../api/auth.js';
import type { Db } from '../../db/pool.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, invalidField } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';

type Obj = Record<string, unknown>;

const NAME = /^[A-Za-z0-9 _.@-]{1,255}$/;

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** an SSH mpint: big-endian, with a 0 byte first when the high bit is set */
function mpint(b64url: string): Buffer {
  let b = Buffer.from(b64url, 'base64url');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return sshString(b);
}

export function generateKeypair(): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const jwk = createPublicKey(publicKey).export({ format: 'jwk' });
  const blob = Buffer.concat([sshString(Buffer.from('ssh-rsa')), mpint(jwk.e!), mpint(jwk.n!)]);
  return { publicKey: `ssh-rsa ${blob.toString('base64')} Generated-by-Nimbus`, privateKey };
}

/** the blob of an OpenSSH public key line, checked; its MD5 fingerprint as Nova shows it */
export function fingerprintOf(publicKey: string): string {
  const [type, data] = publicKey.trim().split(/\s+/);
  const blob = data && /^[A-Za-z0-9+/=]+$/.test(data) ? Buffer.from(data, 'base64') : undefined;
  const inner = blob && blob.length > 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString() : undefined;
  if (!type || !blob || inner !== type)
    throw invalidField(
      'keypair.public_key',
      'not an OpenSSH public key (type base64 [comment])',
      'KEYPAIR_INVALID',
    );
  const md5 = createHash('md5').update(blob).digest('hex');
  return md5.match(/../g)!.join(':');
}

export async function keypairOf(db: Db, caller: Caller, name: string) {
  return db
    .selectFrom('openstackKeypairs')
    .selectAll()
    .where('userUuid', '=', caller.userUuid)
    .where('name', '=', name)
    .executeTakeFirst();
}

/** user-data that also authorises `publicKey`: cloud-config gets the key added; other user-data is left alone */
export function cloudConfigWithKey(userData: string | null, publicKey: string): string {
  const line = `ssh_authorized_keys:\n  - ${publicKey.trim()}\n`;
  if (userData === null || userData.trim() === '') return `#cloud-config\n${line}`;
  if (userData.startsWith('#cloud-config') && !/^ssh_authorized_keys:/m.test(userData))
    return `${userData.replace(/\n?$/, '\n')}${line}`;
  return userData;
}

const notFound = (name: string) =>
  new CloudError('NotFound', 'KEYPAIR_NOT_FOUND', `Keypair ${name} not found for the user.`);

function view(
  k: {
    name: string;
    publicKey: string;
    fingerprint: string;
    type: string;
    userUuid: string;
    createdAt: unknown;
  },
  full: boolean,
): Obj {
  const base: Obj = { name: k.name, public_key: k.publicKey, fingerprint: k.fingerprint };
  if (!full) return base;
  return {
    ...base,
    user_id: k.userUuid,
    id: 0,
    created_at: new Date(k.createdAt as string).toISOString(),
    deleted: false,
    deleted_at: null,
    updated_at: null,
  };
}

export function registerKeypairs(scope: FastifyInstance, deps: OpenStackDeps): void {
  const { db } = deps;
  scope.get('/v2.1/os-keypairs', async (request) => {
    const rows = await db
      .selectFrom('openstackKeypairs')
      .selectAll()
      .where('userUuid', '=', callerOf(request).userUuid)
      .orderBy('name')
      .execute();
    return { keypairs: rows.map((k) => ({ keypair: view(k, false) })) };
  });
  scope.get('/v2.1/os-keypairs/:name', async (request) => {
    const { name } = request.params as { name: string };
    const k = await keypairOf(db, callerOf(request), name);
    if (!k) throw notFound(name);
    return { keypair: view(k, true) };
  });
  scope.post('/v2.1/os-keypairs', async (request) => {
    const caller = callerOf(request);
    const k = (request.body as Obj | undefined)?.keypair as Obj | undefined;
    if (!k || typeof k.name !== 'string' || !NAME.test(k.name))
      throw invalidField('keypair.name', 'letters, digits, spaces, _ . @ -; 1 to 255', 'KEYPAIR_INVALID');
    const given =
      typeof k.public_key === 'string' && k.public_key.trim() !== '' ? k.public_key.trim() : undefined;
    const made = given ? undefined : generateKeypair();
    const publicKey = given ?? made!.publicKey;
    const fingerprint = fingerprintOf(publicKey);
    const row = await db
      .insertInto('openstackKeypairs')
      .values({
        userUuid: caller.userUuid,
        accountUuid: caller.accountUuid,
        name: k.name,
        publicKey,
        fingerprint,
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new CloudError('Conflict', 'KEYPAIR_EXISTS', `Key pair '${k.name}' already exists.`);
    return {
      keypair: {
        ...view(row, false),
        user_id: caller.userUuid,
        ...(made ? { private_key: made.privateKey } : {}),
      },
    };
  });
  scope.delete('/v2.1/os-keypairs/:name', async (request, reply) => {
    const { name } = request.params as { name: string };
    const gone = await db
      .deleteFrom('openstackKeypairs')
      .where('userUuid', '=', callerOf(request).userUuid)
      .where('name', '=', name)
      .executeTakeFirst();
    if (Number(gone.numDeletedRows) === 0) throw notFound(name);
    return reply.code(202).send();
  });
}
