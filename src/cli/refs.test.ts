/**
 * Every `--<ref> <name-or-uuid>` flag the CLI generates keeps its promise: given a name, it is
 * looked up (never sent as if it were a uuid), and the lookup asks the referenced kind. Walks the
 * flags of every create, update and action body of the contract, so a new reference is checked
 * the day it appears.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { KINDS } from './catalog.js';
import type { Ctx } from './context.js';
import { fieldSpecs } from './flags.js';
import { ApiClient, type ApiResponse, type Query } from './http.js';
import { buildProgram } from './program.js';
import { resolveId } from './resolve.js';

const FOUND = '0190a0b0-0000-7000-8000-0000000000aa';

/** Answers every list with one item, and remembers what was asked. */
class RecordingClient extends ApiClient {
  asked: Array<{ path: string; query: Query }> = [];
  constructor() {
    super('http://127.0.0.1:9', 'token');
  }
  override async get(path: string, query: Query = []): Promise<ApiResponse> {
    this.asked.push({ path, query });
    return {
      status: 200,
      body: { items: [{ uuid: FOUND, vmUuid: FOUND, isDefault: true }] },
      location: null,
    };
  }
}

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

function walk(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(walk)];
}

describe('reference flags take names', () => {
  const bodies = KINDS.flatMap((k) => [
    k.create,
    k.update,
    ...Object.values(k.actions ?? {}).map((a) => a.body),
  ]).filter((b) => b !== undefined);
  const refs = bodies.flatMap((b) => fieldSpecs(b, KINDS)).filter((s) => s.ref !== undefined);

  test('the contract has the references the issue names', () => {
    const flags = new Set(refs.map((s) => s.ref?.flag));
    for (const f of ['cluster', 'l3-network', 'data-disk-offering', 'vm-nic', 'instance-offering', 'image'])
      assert.ok(flags.has(f), `--${f}`);
  });

  test('every reference flag resolves a name through its own kind', async () => {
    for (const spec of refs) {
      const kind = spec.ref?.kind;
      assert.ok(kind);
      const client = new RecordingClient();
      const uuid = await resolveId(client, kind, 'some-name');
      assert.equal(uuid, FOUND, `--${spec.ref?.flag} sent 'some-name' as it was`);
      assert.equal(client.asked[0]?.path, `/v1/${kind.kind}`, `--${spec.ref?.flag}`);
      const conditions = client.asked[0]?.query.filter(([k]) => k === 'q').map(([, v]) => v);
      assert.ok(
        conditions?.includes('name=some-name') || conditions?.includes('vm.name=some-name'),
        `--${spec.ref?.flag}: ${JSON.stringify(conditions)}`,
      );
    }
  });

  test('a VM NIC is named by address, by VM, or by VM and L3', async () => {
    const q = async (ref: string) => {
      const client = new RecordingClient();
      assert.equal(await resolveId(client, KINDS.find((k) => k.kind === 'vm-nics')!, ref), FOUND);
      return client.asked[0]?.query.filter(([k]) => k === 'q').map(([, v]) => v);
    };
    assert.deepEqual(await q('10.10.0.5'), ['ip=10.10.0.5']);
    assert.deepEqual(await q('fd00::5'), ['ip=fd00::5']);
    assert.deepEqual(await q('app2'), ['vm.name=app2']);
    assert.deepEqual(await q('app2:private-1'), ['vm.name=app2', 'l3Network.name=private-1']);
  });

  test('every <name-or-uuid> option in the command tree belongs to a reference', () => {
    const program = buildProgram(ctx);
    const promised = walk(program).flatMap((c) =>
      c.options.filter((o) => o.flags.includes('<name-or-uuid>')).map((o) => o.long?.slice(2) ?? ''),
    );
    const known = new Set([
      ...refs.flatMap((s) => [s.ref?.flag, s.ref?.alias]),
      'account', // list --account, resolved as an account
    ]);
    for (const flag of promised) assert.ok(known.has(flag), `--${flag} promises a name but is no reference`);
  });
});
