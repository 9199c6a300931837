/**
 * What a handed-out pool VM's guest is given: its pool's bootstrap and its holder's login, as
 * one MIME multipart user-data (the format cloud-init reads):
 *   1. the pool's bootstrap — `text/cloud-config` when it is one, otherwise a script run once
 *      per VM (`text/x-shellscript-per-once`): it already ran at the warm boot, under the VM's
 *      first instance id, and must not run again when the guest becomes its holder's;
 *   2. `text/cloud-config` making the login user (the pool's `loginUser`) with the holder's SSH
 *      key and/or the SHA-512-crypt hash of the generated password (`hashed_passwd`; the clear
 *      text never leaves the allocate answer), passwordless sudo, and SSH password logins on
 *      only when a password was asked for.
 * Pure: the SSH key check and the document are tested without a guest.
 */
import { randomBytes } from 'node:crypto';
import type { FieldProblem } from '../../../kernel/errors.js';

export interface Login {
  user: string;
  sshKeys: string[];
  /** `$6$…` */
  passwordHash?: string;
}

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/**
 * An OpenSSH public key line (`<type> <base64 blob> [comment]`) is accepted when its type is
 * known and its blob is well-formed base64 that begins with the same type, length-prefixed, as
 * every real key blob does. Returns the problem, or undefined.
 */
export function sshKeyProblem(line: string): FieldProblem | undefined {
  const bad = (problem: string) => ({ field: 'sshKey', problem });
  if (/[\r\n]/.test(line.trim())) return bad('one key, on one line');
  const [type, blob] = line.trim().split(/\s+/);
  if (!type || !KEY_TYPES.has(type))
    return bad(`'${(type ?? '').slice(0, 40)}' is not an SSH public key type (${[...KEY_TYPES].join(', ')})`);
  if (!blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return bad('the key data is not base64');
  const raw = Buffer.from(blob, 'base64');
  const n = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
  if (
    n !== Buffer.byteLength(type) ||
    raw.subarray(4, 4 + n).toString('latin1') !== type ||
    raw.length < 4 + n + 16
  )
    return bad(`the key data is not a ${type} key`);
  return undefined;
}

const yamlString = (s: string) => JSON.stringify(s); // a JSON string is a YAML double-quoted scalar

export function loginCloudConfig(login: Login): string {
  const lines = [
    '#cloud-config',
    'users:',
    '  - default',
    `  - name: ${yamlString(login.user)}`,
    '    shell: /bin/sh',
    `    sudo: ${yamlString('ALL=(ALL) NOPASSWD:ALL')}`,
    `    lock_passwd: ${login.passwordHash ? 'false' : 'true'}`,
  ];
  if (login.passwordHash) lines.push(`    hashed_passwd: ${yamlString(login.passwordHash)}`);
  if (login.sshKeys.length > 0) {
    lines.push('    ssh_authorized_keys:');
    for (const k of login.sshKeys) lines.push(`      - ${yamlString(k.trim())}`);
  }
  if (login.passwordHash) lines.push('ssh_pwauth: true');
  return `${lines.join('\n')}\n`;
}

function part(type: string, filename: string, body: string): string {
  return [
    `Content-Type: ${type}; charset="utf-8"`,
    'MIME-Version: 1.0',
    'Content-Transfer-Encoding: 8bit',
    `Content-Disposition: attachment; filename="${filename}"`,
    '',
    body.endsWith('\n') ? body : `${body}\n`,
  ].join('\n');
}

export function handOutUserData(
  bootstrap: string | null,
  login: Login,
  boundary = randomBytes(12).toString('hex'),
): string {
  const b = `==nimbus-${boundary}==`;
  const parts: string[] = [];
  if (bootstrap) {
    const cloudConfig = bootstrap.startsWith('#cloud-config');
    parts.push(
      part(cloudConfig ? 'text/cloud-config' : 'text/x-shellscript-per-once', 'pool-bootstrap', bootstrap),
    );
  }
  parts.push(part('text/cloud-config', 'nimbus-login.cfg', loginCloudConfig(login)));
  return [
    `Content-Type: multipart/mixed; boundary="${b}"`,
    'MIME-Version: 1.0',
    '',
    ...parts.map((p) => `--${b}\n${p}`),
    `--${b}--`,
    '',
  ].join('\n');
}
