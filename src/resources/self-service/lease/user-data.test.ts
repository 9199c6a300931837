import assert from 'node:assert/strict';
import { test } from 'node:test';
import { handOutUserData, loginCloudConfig, sshKeyProblem } from './user-data.js';

// made with `ssh-keygen -t ed25519 -C dev@laptop`
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKwU4hg5pkxAG7Dc1X5RRAbA7BbMsgfYfWk62YRKWgXU dev@laptop';

test('an SSH public key is accepted only when its type is known and its blob is a key of that type', () => {
  assert.equal(sshKeyProblem(ED25519), undefined);
  assert.equal(sshKeyProblem(ED25519.split(' ').slice(0, 2).join(' ')), undefined, 'the comment is optional');
  assert.match(sshKeyProblem('ssh-dss AAAAB3NzaC1kc3MAAACBAP')!.problem, /not an SSH public key type/);
  assert.match(sshKeyProblem('ssh-ed25519 not*base64')!.problem, /not base64/);
  // a well-formed blob of an ed25519 key labelled as RSA
  assert.match(sshKeyProblem(ED25519.replace('ssh-ed25519', 'ssh-rsa'))!.problem, /not a ssh-rsa key/);
  assert.match(sshKeyProblem(`${ED25519}\n${ED25519}`)!.problem, /one line/);
  assert.match(sshKeyProblem('-----BEGIN OPENSSH PRIVATE KEY-----')!.problem, /not an SSH public key type/);
  assert.equal(sshKeyProblem('')!.field, 'sshKey');
});

test('the login cloud-config: the user with the key and the password hash, password SSH only with a password', () => {
  const both = loginCloudConfig({ user: 'dev', sshKeys: [ED25519], passwordHash: '$6$salt$hash' });
  assert.equal(
    both,
    [
      '#cloud-config',
      'users:',
      '  - default',
      '  - name: "dev"',
      '    shell: /bin/sh',
      '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
      '    lock_passwd: false',
      '    hashed_passwd: "$6$salt$hash"',
      '    ssh_authorized_keys:',
      `      - "${ED25519}"`,
      'ssh_pwauth: true',
      '',
    ].join('\n'),
  );
  const keyOnly = loginCloudConfig({ user: 'dev', sshKeys: [ED25519] });
  assert.match(keyOnly, /lock_passwd: true/);
  assert.doesNotMatch(keyOnly, /hashed_passwd|ssh_pwauth/);
});

test('the hand-out user-data is a multipart: the bootstrap run once per VM, then the login', () => {
  const ud = handOutUserData('#!/bin/sh\necho ready > /etc/motd', { user: 'dev', sshKeys: [ED25519] }, 'b0');
  const b = '==nimbus-b0==';
  assert.ok(ud.startsWith(`Content-Type: multipart/mixed; boundary="${b}"\nMIME-Version: 1.0\n\n--${b}\n`));
  assert.ok(ud.endsWith(`--${b}--\n`));
  const parts = ud.split(`--${b}`).slice(1, -1);
  assert.equal(parts.length, 2);
  assert.match(parts[0]!, /Content-Type: text\/x-shellscript-per-once/);
  // the newline before each boundary belongs to the boundary (RFC 2046)
  assert.match(parts[0]!, /\n\n#!\/bin\/sh\necho ready > \/etc\/motd\n\n$/);
  assert.match(parts[1]!, /Content-Type: text\/cloud-config/);
  assert.ok(parts[1]!.includes(`\n\n${loginCloudConfig({ user: 'dev', sshKeys: [ED25519] })}`));
  // a cloud-config bootstrap stays cloud-config; no bootstrap: the login alone
  assert.match(
    handOutUserData('#cloud-config\npackages: [redis]', { user: 'dev', sshKeys: [ED25519] }),
    /text\/cloud-config; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\nContent-Disposition: attachment; filename="pool-bootstrap"/,
  );
  assert.equal(
    handOutUserData(null, { user: 'dev', sshKeys: [ED25519] }).split('Content-Type: text/').length,
    2,
  );
});
