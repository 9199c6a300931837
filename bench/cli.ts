/**
 * npm run bench:cli -- [--runs 15] [--vms 20]
 *
 * CLI start-up and a `vm list` round trip, each as a fresh `nimbus` process (what a person or a
 * script pays per command), beside `node -e 0` measured in the same run (the floor: Node's own
 * start-up on this machine). Wall time is what people wait; CPU time (user + sys, from
 * /usr/bin/time when present) is steadier on a machine other work shares. The server is a fresh
 * node in this process (on the PostgreSQL at DATABASE_URL) with the demo environment and `--vms`
 * VMs on the public network, so the list resolves hosts, addresses, images and offerings for
 * real. Prints figures; never passes or fails on timing.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createDemoEnvironment } from '../src/demo.js';
import { ADMIN_PASSWORD, startTestNode } from '../test/support/node.js';
import { flags, machine } from './lib.js';

const f = flags({
  runs: { type: 'string', default: '15' },
  vms: { type: 'string', default: '20' },
});
const RUNS = Number(f.runs);
const VMS = Number(f.vms);
const CLI = join(process.cwd(), 'bin', 'nimbus.js');
const UNBUNDLED = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const TIME = '/usr/bin/time';

interface Sample {
  wallMs: number;
  cpuMs?: number;
}

function exec(
  cmd: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    // async: the server answering the CLI runs in this very process
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** One process, timed from outside: wall clock here, CPU from /usr/bin/time's report. */
async function once(args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-cli-'));
  const report = join(dir, 'time');
  const useTime = existsSync(TIME);
  const cmd = useTime ? TIME : process.execPath;
  const argv = useTime ? ['-f', '%U %S', '-o', report, process.execPath, ...args] : args;
  const t0 = process.hrtime.bigint();
  const r = await exec(cmd, argv, env);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const sample: Sample = { wallMs };
  if (useTime) {
    const [user, sys] = readFileSync(report, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
    if (user !== undefined && sys !== undefined) sample.cpuMs = (user + sys) * 1000;
  }
  rmSync(dir, { recursive: true, force: true });
  return sample;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)] ?? 0;
}

/** Runs the cases interleaved (a, b, c, a, b, c…) so background load falls on all of them alike. */
async function measure(
  cases: Array<[string, string[]]>,
  env: NodeJS.ProcessEnv,
): Promise<Map<string, Sample[]>> {
  const out = new Map<string, Sample[]>(cases.map(([name]) => [name, []]));
  for (const [, args] of cases) await once(args, env); // warm the file cache
  for (let i = 0; i < RUNS; i++) for (const [name, args] of cases) out.get(name)?.push(await once(args, env));
  return out;
}

async function main(): Promise<void> {
  const t = await startTestNode();
  const profileDir = mkdtempSync(join(tmpdir(), 'nimbus-bench-profile-'));
  try {
    const admin = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('type', '=', 'admin')
      .executeTakeFirstOrThrow();
    await createDemoEnvironment(t.node.services, t.node.kindServices, admin.uuid, pino({ level: 'silent' }));
    const ids = async (kind: string, name: string) =>
      (await t.admin.get(`/v1/${kind}?q=name=${name}`)).body.items[0].uuid as string;
    const body = {
      imageUuid: await ids('images', 'ubuntu-22.04'),
      instanceOfferingUuid: await ids('instance-offerings', 'small'),
      l3NetworkUuids: [await ids('l3-networks', 'public')],
    };
    for (let i = 1; i <= VMS; i++) {
      const job = await t.admin.job('POST', '/v1/vms', { ...body, name: `bvm-${i}` });
      if (job.state !== 'Succeeded') throw new Error(`vm create: ${JSON.stringify(job.error)}`);
    }

    const env = { ...process.env, NIMBUS_PROFILE: join(profileDir, 'profile.json'), NO_COLOR: '1' };
    const login = await exec(
      process.execPath,
      [CLI, 'login', '--url', t.url, '--account', 'admin', '--password', ADMIN_PASSWORD],
      env,
    );
    if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);

    const cases: Array<[string, string[]]> = [
      ['node -e 0 (reference)', ['-e', '0']],
      ['nimbus --version', [CLI, '--version']],
      // the same CLI from the transpiled tree (no bundle, no serialized catalog): what bundling buys
      ['unbundled dist/src/cli --version', [UNBUNDLED, '--version']],
      ['nimbus --help', [CLI, '--help']],
      ['nimbus vm list --help', [CLI, 'vm', 'list', '--help']],
      [`nimbus vm list (${VMS} VMs, round trip)`, [CLI, 'vm', 'list']],
      ['nimbus vm list -f json', [CLI, 'vm', 'list', '-f', 'json']],
    ];
    const results = await measure(cases, env);
    const ref = median((results.get(cases[0]?.[0] ?? '') ?? []).map((s) => s.wallMs));
    console.log(
      `bench:cli — ${new Date().toISOString()} — ${machine()}, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(`${RUNS} runs of each, interleaved; medians (p90) in ms; "over node" = wall − node -e 0\n`);
    console.log('| command | wall | wall p90 | over node | cpu (user+sys) |');
    console.log('|---|---|---|---|---|');
    for (const [name, samples] of results) {
      const wall = samples.map((s) => s.wallMs);
      const cpu = samples.flatMap((s) => (s.cpuMs === undefined ? [] : [s.cpuMs]));
      console.log(
        `| ${name} | ${median(wall).toFixed(0)} | ${p90(wall).toFixed(0)} | ${(median(wall) - ref).toFixed(0)} | ${cpu.length ? median(cpu).toFixed(0) : '-'} |`,
      );
    }
  } finally {
    rmSync(profileDir, { recursive: true, force: true });
    await t.stop();
  }
}

await main();
