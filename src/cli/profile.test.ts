import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { UsageError } from './errors.js';
import { profilePath, readProfile, resolveConnection, writeProfile } from './profile.js';

const dir = mkdtempSync(join(tmpdir(), 'nimbus-profile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;

describe('profile', () => {
  test('NIMBUS_PROFILE moves the file; the default is under the home directory', () => {
    assert.equal(profilePath({ NIMBUS_PROFILE: '/x/p.json' }), '/x/p.json');
    assert.match(profilePath({}), /\.nimbus\/profile\.json$/);
  });

  test('is written 0600 in a 0700 directory, whatever the umask', () => {
    const env = { NIMBUS_PROFILE: join(dir, 'a', 'b', 'profile.json') };
    const old = process.umask(0o000);
    try {
      writeProfile(
        { url: 'http://h:8080', token: 't1', expiresAt: '2099-01-01T00:00:00Z', account: 'admin' },
        env,
      );
    } finally {
      process.umask(old);
    }
    assert.equal(mode(env.NIMBUS_PROFILE), 0o600);
    assert.equal(mode(join(dir, 'a', 'b')), 0o700);
    assert.deepEqual(readProfile(env), {
      url: 'http://h:8080',
      token: 't1',
      expiresAt: '2099-01-01T00:00:00Z',
      account: 'admin',
    });
  });

  test('rewriting a too-open existing file makes it 0600 again', () => {
    mkdirSync(join(dir, 'open'));
    const path = join(dir, 'open', 'profile.json');
    writeFileSync(path, '{"url":"http://old"}');
    chmodSync(path, 0o644);
    writeProfile({ url: 'http://new', token: 't2' }, { NIMBUS_PROFILE: path });
    assert.equal(mode(path), 0o600);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).url, 'http://new');
  });

  test('NIMBUS_URL and NIMBUS_TOKEN override the profile', () => {
    const NIMBUS_PROFILE = join(dir, 'c', 'profile.json');
    writeProfile({ url: 'http://profile', token: 'ptoken' }, { NIMBUS_PROFILE });
    assert.deepEqual(resolveConnection({ NIMBUS_PROFILE }), { url: 'http://profile', token: 'ptoken' });
    assert.deepEqual(resolveConnection({ NIMBUS_PROFILE, NIMBUS_URL: 'http://env' }), {
      url: 'http://env',
      token: 'ptoken',
    });
    assert.deepEqual(resolveConnection({ NIMBUS_PROFILE, NIMBUS_TOKEN: 'etoken' }), {
      url: 'http://profile',
      token: 'etoken',
    });
  });

  test('no profile and no NIMBUS_URL, or a broken file, is a usage error', () => {
    assert.throws(() => resolveConnection({ NIMBUS_PROFILE: join(dir, 'none.json') }), UsageError);
    assert.deepEqual(resolveConnection({ NIMBUS_PROFILE: join(dir, 'none.json'), NIMBUS_URL: 'http://u' }), {
      url: 'http://u',
      token: undefined,
    });
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{not json');
    assert.throws(() => readProfile({ NIMBUS_PROFILE: broken }), /not valid JSON/);
  });
});
