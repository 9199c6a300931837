/**
 * Runs the host tools the network part drives (ip, bridge, nft, dnsmasq, sysctl) without a
 * shell, so no name or address from a request is ever parsed by one. A tool that is not
 * installed is HOST_TOOL_MISSING (Unavailable); a tool that refuses is
 * HOST_NETWORK_COMMAND_FAILED with its command line and stderr, so the management side's job
 * log says what the host refused.
 */
import { spawn } from 'node:child_process';
import { CloudError } from '../../kernel/errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** runs a tool; resolves with its exit code (a failure is the caller's to judge) */
export function runRaw(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(
          new CloudError('Unavailable', 'HOST_TOOL_MISSING', `the host lacks the tool ${cmd}`, {
            details: { tool: cmd },
          }),
        );
      } else reject(err);
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** runs a tool and throws HOST_NETWORK_COMMAND_FAILED when it exits non-zero */
export async function run(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await runRaw(cmd, args, input);
  if (r.code !== 0) throw commandFailed(cmd, args, r);
  return r.stdout;
}

export function commandFailed(cmd: string, args: string[], r: RunResult): CloudError {
  const line = [cmd, ...args].join(' ');
  return new CloudError(
    'Internal',
    'HOST_NETWORK_COMMAND_FAILED',
    `${line}: ${r.stderr.trim() || `exit ${r.code}`}`,
    {
      details: { command: line, exitCode: r.code, stderr: r.stderr.trim() },
    },
  );
}

/** `ip` in this process's namespace, or inside the named one */
export function ip(args: string[], ns?: string): Promise<string> {
  return run('ip', ns ? ['-n', ns, ...args] : args);
}

/** JSON output of `ip -j …` (an empty answer is an empty list) */
export async function ipJson<T>(args: string[], ns?: string): Promise<T[]> {
  const out = await ip(['-j', ...args], ns);
  return out.trim() === '' ? [] : (JSON.parse(out) as T[]);
}

/** runs a command inside a named namespace */
export function inNs(ns: string, cmd: string, args: string[], input?: string): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

/** whether an interface exists in this namespace (or the named one) */
export async function linkExists(name: string, ns?: string): Promise<boolean> {
  const r = await runRaw('ip', [...(ns ? ['-n', ns] : []), 'link', 'show', 'dev', name]);
  return r.code === 0;
}

export interface LinkInfo {
  ifname: string;
  mtu?: number;
  master?: string;
  address?: string;
  operstate?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string };
}

export async function links(ns?: string): Promise<LinkInfo[]> {
  return ipJson<LinkInfo>(['-d', 'link', 'show'], ns);
}

export async function link(name: string, ns?: string): Promise<LinkInfo | undefined> {
  if (!(await linkExists(name, ns))) return undefined;
  return (await ipJson<LinkInfo>(['-d', 'link', 'show', 'dev', name], ns))[0];
}

/** deletes an interface; a missing one is fine */
export async function deleteLink(name: string, ns?: string): Promise<void> {
  if (await linkExists(name, ns)) await ip(['link', 'del', 'dev', name], ns);
}
