/**
 * Live migration between two agents, shared storage only (both hosts open the same volume
 * paths; QEMU keeps the target's images inactive until the switch-over). The source agent asks
 * the target agent (`vm.prepare-migration`, authenticated with this agent's own secret: the
 * agents of one cloud share it) to start the same machine waiting on a TCP port, then runs QMP
 * `migrate` and polls `query-migrate` to completion, then quits its QEMU and forgets the VM: it
 * now runs on the target. On failure the target's waiting QEMU is destroyed and the source keeps
 * running.
 */

import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { VmSpec } from '../../contract/agent.js';
import { CloudError, type ErrorBody } from '../../kernel/errors.js';
import type { Hypervisor } from './hypervisor.js';
import { vmPaths } from './layout.js';
import { waitExit } from './process.js';

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
export function prepareMigration(hv: Hypervisor, vm: VmSpec, listenHost: string): Promise<{ uri: string }> {
  return hv.serial(vm.uuid, async () => {
    const paths = vmPaths(hv.opts.stateDir, vm.uuid);
    if ((await hv.pid(vm.uuid)) !== undefined) {
      const saved = await readFile(paths.incoming, 'utf8').catch(() => undefined);
      const { status } = await (await hv.qmp(vm.uuid)).execute<{ status: string }>('query-status');
      if (saved !== undefined && status === 'inmigrate') return JSON.parse(saved) as { uri: string };
      throw new CloudError(
        'Conflict',
        'AGENT_VM_ALREADY_RUNNING',
        `VM ${vm.uuid} already runs on this host`,
        {
          details: { vmUuid: vm.uuid, status },
        },
      );
    }
    const host = WILDCARDS.has(listenHost) ? '0.0.0.0' : listenHost;
    const uri = `tcp:${host}:${await freePort(host)}`;
    await hv.startUnqueued(vm, uri);
    await writeFile(paths.incoming, JSON.stringify({ uri }));
    return { uri };
  });
}

async function callPeer(target: string, secret: string, command: string, body: unknown): Promise<unknown> {
  const base = target.includes('://') ? target : `http://${target}`;
  let res: Response;
  try {
    res = await fetch(new URL(`/v1/commands/${command}`, base), {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
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
export function migrate(hv: Hypervisor, uuid: string, target: string, secret: string): Promise<void> {
  return hv.serial(uuid, async () => {
    const spec = await hv.specOf(uuid);
    const qmp = await hv.qmp(uuid);
    const pid = (await hv.pid(uuid))!;
    const { uri: offered } = (await callPeer(target, secret, 'vm.prepare-migration', { vm: spec })) as {
      uri: string;
    };
    const [, host = '', port = ''] = /^tcp:(.*):(\d+)$/.exec(offered) ?? [];
    const targetHost = new URL(target.includes('://') ? target : `http://${target}`).hostname;
    const uri = `tcp:${WILDCARDS.has(host) ? targetHost : host}:${port}`;
    try {
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
      await callPeer(target, secret, 'vm.destroy', { vmUuid: uuid }).catch(() => undefined);
      throw err;
    }
    await qmp.execute('quit').catch(() => undefined);
    await waitExit(pid, hv.paths(uuid), 10_000);
    await hv.stopUnqueued(spec, true);
    await rm(hv.paths(uuid).dir, { recursive: true, force: true });
    hv.opts.log.info({ vmUuid: uuid, target }, 'VM migrated away');
  });
}
