import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, sha512Crypt } from './sha512-crypt.js';

test('SHA-512-crypt matches the reference values (openssl passwd -6, and Drepper’s test vectors)', () => {
  // `openssl passwd -6 -salt saltsalt secretpw`, run on this machine
  assert.equal(
    sha512Crypt('secretpw', 'saltsalt'),
    '$6$saltsalt$xu9/qiJ1zv/ph9Z3Cqv4qtkwOG83JC6cPkNu/EZ7DtLKrkzA5qJ.9wkfbx5W8Xa77jcQZzdYN4zE.EPHRNZ0D/',
  );
  // from the specification's test vectors (rounds 5000 = the default)
  assert.equal(
    sha512Crypt('Hello world!', 'saltstring'),
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  );
  // a salt longer than 16 characters is cut to 16
  assert.equal(
    sha512Crypt(
      'a very much longer text to encrypt.  This one even stretches over morethan one line.',
      'toolongsaltstringxyz',
    ).slice(0, 20),
    '$6$toolongsaltstrin$',
  );
});

test('a fresh hash has a random salt and verifies like any other', () => {
  const h = hashPassword('p4ss');
  const salt = h.split('$')[2]!;
  assert.equal(salt.length, 16);
  assert.equal(sha512Crypt('p4ss', salt), h);
  assert.notEqual(hashPassword('p4ss'), h);
});
