/**
 * Network namespaces this part makes (DHCP servers, virtual routers). Their names are global on
 * the machine (/run/netns); the agent must run with the machine's mount namespace — on a real
 * host it runs in the root namespaces; in tests it is put into a "host" network namespace with
 * `nsenter --net=/run/netns/<host>` and NOT `ip netns exec`, whose private mount namespace would
 * hide the namespaces the agent makes from everyone else (and from a restarted agent).
 */
import { ip, run, runRaw } from './exec.js';

export async function listNamespaces(): Promise<string[]> {
  const r = await runRaw('ip', ['netns', 'list']);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

export async function nsExists(name: string): Promise<boolean> {
  return (await runRaw('ip', ['-n', name, 'link', 'show', 'lo'])).code === 0;
}

/** makes the namespace (idempotent), loopback up */
export async function ensureNs(name: string): Promise<void> {
  if (!(await nsExists(name))) {
    // a stale /run/netns entry (its namespace gone) blocks `add`: remove it first
    await runRaw('ip', ['netns', 'del', name]);
    await run('ip', ['netns', 'add', name]);
  }
  await ip(['link', 'set', 'lo', 'up'], name);
}

/** kills what still runs inside, then deletes the namespace (missing = fine) */
export async function deleteNs(name: string): Promise<void> {
  const pids = await runRaw('ip', ['netns', 'pids', name]);
  if (pids.code === 0) {
    for (const p of pids.stdout.split('\n')) {
      const pid = Number(p.trim());
      if (Number.isInteger(pid) && pid > 1) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
  }
  const r = await runRaw('ip', ['netns', 'del', name]);
  if (r.code !== 0 && !/No such file|not found|does not exist/i.test(r.stderr)) {
    await run('ip', ['netns', 'del', name]);
  }
}
