import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readSerialTail, trimSerialLog } from './serial-log.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'serial-log-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('no log yet: empty; the tail of a log is its last bytes and the size kept', async () => {
  assert.deepEqual(await readSerialTail(join(dir, 'none.log'), 100), { log: '', size: 0 });
  const path = join(dir, 'a.log');
  await writeFile(path, 'line one\nline two\n');
  assert.deepEqual(await readSerialTail(path, 9), { log: 'line two\n', size: 18 });
  assert.deepEqual(await readSerialTail(path, 1000), { log: 'line one\nline two\n', size: 18 });
});

test('tailBytes that is not a whole positive number is refused naming it', async () => {
  for (const bad of [0, -1, 1.5, '10', undefined])
    await assert.rejects(
      readSerialTail(join(dir, 'a.log'), bad),
      (e: { code?: string; details?: { fields?: Array<{ field: string }> } }) => {
        assert.equal(e.code, 'AGENT_REQUEST_INVALID');
        assert.deepEqual(
          e.details?.fields?.map((f) => f.field),
          ['tailBytes'],
        );
        return true;
      },
    );
});

test('a log over the cap is cut to its last half of the cap, at a start and at a read', async () => {
  const path = join(dir, 'big.log');
  const text = Array.from({ length: 200 }, (_, i) => `line ${String(i).padStart(4, '0')}\n`).join('');
  await writeFile(path, text);
  await trimSerialLog(path, 10_000); // under the cap: untouched
  assert.equal((await stat(path)).size, text.length);
  await trimSerialLog(path, 1000);
  assert.equal(await readFile(path, 'utf8'), text.slice(text.length - 500));
  await writeFile(path, text);
  const read = await readSerialTail(path, 20, 1000);
  assert.deepEqual(read, { log: text.slice(text.length - 20), size: 500 });
});
