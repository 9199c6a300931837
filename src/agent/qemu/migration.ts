/**
 * Live migration between two agents. Shared storage: both hosts open the same volume paths
 * (QEMU keeps the target's images inactive until the switch-over). Local storage: the target
 * finds none of the VM's local disk files, makes empty ones of the same format and size, and
 * the source copies the disks along with the memory (QEMU block migration); a VM with some
 * disks shared and some not is refused (block migration copies every disk, and copying a shared
 * disk onto itself would corrupt it). The source agent asks
 * the target agent (`vm.prepare-migration`, authenticated with the target's credential that the
 * management node sends in `targetAgent`; without it, with this agent's own secret) to start the same machine waiting on a TCP port, then runs QMP
 * `migrate` and polls `query-migrate` to completion, then quits its QEMU and forgets the VM: it
 * now runs on the target. On failure the target's waiting QEMU is destroyed and the source keeps
 * running. A vm.migrate retried after it completed (the source no longer has the VM, the target
 * runs it) is success.
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type { AgentPeerCommands, VmSpec } from '../../contract/agent.js';
import { CloudError, type ErrorBody } from '../../kernel/errors.js';
import { formatDriver, volumeNodeName } from './blockdev.js';
import { type Hypervisor, vmNotFound } from './hypervisor.js';
import { vmPaths } from './layout.js';
import { waitExit } from './process.js';

const run = promisify(execFile);

type Prepared = AgentPeerCommands['vm.prepare-migration']['response'];
/** incoming.json: what the target answered, and the disk files it made for the migration */
export interface IncomingRecord {
  prepared: Prepared;
  made: string[];
}

export const MIGRATION_TIMEOUT_MS = 30 * 60_000;
const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Target side: start the VM waiting for the incoming migration (idempotent). */
export function prepareMigration(hv: Hypervisor, vm: VmSpec, listenHost: string): Promise<Prepared> {
  return hv.serial(vm.uuid, async () => {
    const paths = vmPaths(hv.opts.stateDir, vm.uuid);
    if ((await hv.pid(vm.uuid)) !== undefined) {
      const saved = await readFile(paths.incoming, 'utf8').catch(() => undefined);
      const { status } = await (await hv.qmp(vm.uuid)).execute<{ status: string }>('query-status');
      if (saved !== undefined && status === 'inmigrate')
        return (JSON.parse(saved) as IncomingRecord).prepared;
      throw new CloudError(
        'Conflict',
        'AGENT_VM_ALREADY_RUNNING',
        `VM ${vm.uuid} already runs on this host`,
        {
          details: { vmUuid: vm.uuid, status },
        },
      );
    }
    const made = await makeMissingDisks(vm);
    try {
      return await startIncoming(hv, vm, listenHost, made);
    } catch (err) {
      // nothing of a failed preparation stays behind: neither QEMU nor the disks made for it
      const spec = await hv.readSpec(vm.uuid);
      if (spec !== undefined) await hv.stopUnqueued(spec, true).catch(() => undefined);
      await rm(paths.dir, { recursive: true, force: true });
      for (const path of made) await rm(path, { force: true });
      throw err;
    }
  });
}

async function startIncoming(
  hv: Hypervisor,
  vm: VmSpec,
  listenHost: string,
  made: string[],
): Promise<Prepared> {
  const blockMigration = made.length > 0;
  const paths = vmPaths(hv.opts.stateDir, vm.uuid);
  {
    const host = WILDCARDS.has(listenHost) ? '0.0.0.0' : listenHost;
    const uri = `tcp:${host}:${await freePort(host)}`;
    await hv.startUnqueued(vm, uri);
    const answer: Prepared = { uri };
    if (blockMigration) {
      // the empty disks, exported writable over NBD for the source's mirror jobs
      const qmp = await hv.qmp(vm.uuid);
      const nbd = `tcp:${host}:${await freePort(host)}`;
      const [, , nbdPort = ''] = /^tcp:(.*):(\d+)$/.exec(nbd) ?? [];
      await qmp.execute('nbd-server-start', { addr: { type: 'inet', data: { host, port: nbdPort } } });
      for (const v of vm.volumes) {
        const node = volumeNodeName(v.uuid);
        await qmp.execute('block-export-add', {
          type: 'nbd',
          id: `exp-${node}`,
          'node-name': node,
          writable: true,
        });
      }
      answer.blockMigration = { nbd };
    }
    // Once the guest runs here the NBD server has served, and the disks made for the migration
    // are the VM's (until then vm.destroy removes them: a failed migration leaves no empty disk
    // that a retry would take for shared storage).
    const qmp = await hv.qmp(vm.uuid);
    qmp
      .waitEvent('RESUME', MIGRATION_TIMEOUT_MS)
      .then(async () => {
        await rm(paths.incoming, { force: true });
        if (blockMigration) await qmp.execute('nbd-server-stop');
      })
      .catch(() => undefined);
    const record: IncomingRecord = { prepared: answer, made };
    await writeFile(paths.incoming, JSON.stringify(record));
    return answer;
  }
}

/** Makes the VM's local disk files when this host has none of them; answers the paths it made. */
async function makeMissingDisks(vm: VmSpec): Promise<string[]> {
  const local = vm.volumes.filter((v) => v.path.startsWith('/'));
  const missing = local.filter((v) => !existsSync(v.path));
  if (missing.length === 0) return [];
  if (missing.length !== vm.volumes.length) {
    throw new CloudError(
      'Conflict',
      'AGENT_MIGRATION_STORAGE_MIXED',
      `VM ${vm.uuid} has disks this host shares with the source and disks it lacks; it cannot be migrated`,
      { details: { vmUuid: vm.uuid, missing: missing.map((v) => v.uuid) } },
    );
  }
  const made: string[] = [];
  try {
    for (const v of missing) {
      await mkdir(dirname(v.path), { recursive: true });
      await run('qemu-img', ['create', '-q', '-f', formatDriver(v.format), v.path, String(v.size)]);
      made.push(v.path);
    }
  } catch (err) {
    for (const path of made) await rm(path, { force: true });
    throw new CloudError(
      'Internal',
      'AGENT_MIGRATION_DISK_FAILED',
      `cannot make disk files: ${(err as Error).message}`,
    );
  }
  return made;
}

async function callPeer(
  target: string,
  authorization: string,
  command: string,
  body: unknown,
): Promise<unknown> {
  const base = target.includes('://') ? target : `http://${target}`;
  let res: Response;
  try {
    res = await fetch(new URL(`/v1/commands/${command}`, base), {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new CloudError(
      'Unavailable',
      'AGENT_MIGRATION_TARGET_UNREACHABLE',
      `target agent ${target}: ${(err as Error).message}`,
      {
        retryable: true,
      },
    );
  }
  const answer = (await res.json().catch(() => ({}))) as { error?: ErrorBody };
  if (!res.ok) {
    throw new CloudError(
      'Unavailable',
      'AGENT_MIGRATION_TARGET_FAILED',
      `target agent ${target} refused ${command}: ${answer.error?.message ?? res.status}`,
      {
        details: { target, command, status: res.status, error: answer.error },
      },
    );
  }
  return answer;
}

/** Source side: migrate the running VM to the agent at `target` (host:port or http://host:port). */
/**
 * Whether the target agent runs the VM (asked with its `vm.list`, at most 10 s): how a retried
 * vm.migrate whose first attempt completed (its answer lost) learns it is done.
 */
async function runsOn(target: string, authorization: string, uuid: string): Promise<boolean> {
  const base = target.includes('://') ? target : `http://${target}`;
  try {
    const res = await fetch(new URL('/v1/commands/vm.list', base), {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(10_000),
    });
    const answer = (await res.json()) as { vms?: Array<{ uuid: string; state: string }> };
    return res.ok && (answer.vms ?? []).some((v) => v.uuid === uuid && v.state === 'Running');
  } catch {
    return false;
  }
}

export function migrate(hv: Hypervisor, uuid: string, target: string, authorization: string): Promise<void> {
  return hv.serial(uuid, async () => {
    const known = await hv.readSpec(uuid);
    if (known === undefined) {
      // idempotent: a migration that already moved the VM there is success (the simulator agrees)
      if (await runsOn(target, authorization, uuid)) return;
      throw vmNotFound(uuid);
    }
    const spec = known;
    const qmp = await hv.qmp(uuid);
    const pid = (await hv.pid(uuid))!;
    const prepared = (await callPeer(target, authorization, 'vm.prepare-migration', {
      vm: spec,
    })) as Prepared;
    const targetHost = new URL(target.includes('://') ? target : `http://${target}`).hostname;
    const reachable = (offered: string) => {
      const [, host = '', port = ''] = /^tcp:(.*):(\d+)$/.exec(offered) ?? [];
      return { host: WILDCARDS.has(host) ? targetHost : host, port };
    };
    const mem = reachable(prepared.uri);
    const uri = `tcp:${mem.host}:${mem.port}`;
    const jobs: string[] = [];
    try {
      if (prepared.blockMigration !== undefined) {
        const nbd = reachable(prepared.blockMigration.nbd);
        for (const v of spec.volumes) {
          const node = volumeNodeName(v.uuid);
          const mirror = `m${node.slice(1)}`;
          const job = `mirror-${node}`;
          await qmp.execute('blockdev-add', {
            driver: 'nbd',
            'node-name': mirror,
            server: { type: 'inet', host: nbd.host, port: nbd.port },
            export: node,
          });
          const ready = qmp.waitEvent('BLOCK_JOB_READY', MIGRATION_TIMEOUT_MS, (e) => e.data?.device === job);
          await qmp.execute('blockdev-mirror', { 'job-id': job, device: node, target: mirror, sync: 'full' });
          jobs.push(job);
          await ready;
        }
      }
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'events', state: true }],
      });
      await qmp.execute('migrate', { uri });
      const deadline = Date.now() + MIGRATION_TIMEOUT_MS;
      for (;;) {
        const info = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
        if (info.status === 'completed') break;
        if (info.status === 'failed' || info.status === 'cancelled' || Date.now() > deadline) {
          if (info.status !== 'failed' && info.status !== 'cancelled') await qmp.execute('migrate_cancel');
          throw new CloudError(
            'Internal',
            'AGENT_MIGRATION_FAILED',
            `migration of ${uuid} ${info.status ?? 'timed out'}: ${info['error-desc'] ?? ''}`,
            {
              details: { vmUuid: uuid, target, status: info.status },
            },
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    } catch (err) {
      for (const job of jobs)
        await qmp.execute('block-job-cancel', { device: job, force: true }).catch(() => undefined);
      await callPeer(target, authorization, 'vm.destroy', { vmUuid: uuid }).catch(() => undefined);
      throw err;
    }
    // the guest is paused here and runs there: the mirrors stop without switching over
    for (const job of jobs) await qmp.execute('block-job-cancel', { device: job }).catch(() => undefined);
    await qmp.execute('quit').catch(() => undefined);
    await waitExit(pid, hv.paths(uuid), 10_000);
    await hv.stopUnqueued(spec, true);
    await rm(hv.paths(uuid).dir, { recursive: true, force: true });
    hv.opts.log.info({ vmUuid: uuid, target }, 'VM migrated away');
  });
}
