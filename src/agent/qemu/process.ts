/**
 * QEMU processes: launch (daemonized, so guests outlive the agent), find by pidfile, wait for
 * exit, kill. A pid is trusted only when /proc/<pid>/cmdline still names this VM's QMP socket:
 * a recycled pid is never signalled. Never kills by name.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { CloudError } from '../../kernel/errors.js';
import type { VmPaths } from './layout.js';

export const QEMU_BINARY = 'qemu-system-x86_64';

export async function launchQemu(args: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(QEMU_BINARY, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const text = (stderr || err.message).trim().split('\n').slice(-5).join('\n');
      reject(new CloudError('Internal', 'AGENT_QEMU_START_FAILED', `qemu did not start: ${text}`));
    });
  });
}

/** The pid of this VM's QEMU when it runs, else undefined. */
export async function runningPid(paths: VmPaths): Promise<number | undefined> {
  const text = await readFile(paths.pid, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  return (await pidIsQemuOf(pid, paths)) ? pid : undefined;
}

export async function pidIsQemuOf(pid: number, paths: VmPaths): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // field 3 (after the parenthesised name) is the state; a zombie has already exited
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmdline.some((arg) => arg.includes(paths.qmp));
  } catch {
    return false;
  }
}

export async function waitExit(pid: number, paths: VmPaths, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await pidIsQemuOf(pid, paths))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !(await pidIsQemuOf(pid, paths));
}

/** SIGKILL this VM's QEMU (checked by cmdline first) and wait until it is gone. */
export async function killQemu(pid: number, paths: VmPaths): Promise<void> {
  if (!(await pidIsQemuOf(pid, paths))) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  if (!(await waitExit(pid, paths, 10_000))) {
    throw new CloudError('Internal', 'AGENT_QEMU_KILL_FAILED', `qemu pid ${pid} survived SIGKILL for 10 s`);
  }
}
