/**
 * What this machine is: host.connect, host.capacity and host.ping, read from the machine itself
 * (/proc, statfs, the QEMU binary) on every call, never cached or invented.
 * The accelerator is decided once at start (detectAccelerator): KVM only when /dev/kvm opens AND
 * the CPU advertises vmx/svm. A /dev/kvm without them (PVM, nested without VMX) accepts guests it
 * cannot boot, so it counts as absent (notes/real-hosts.md §0, §3).
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile, statfs } from 'node:fs/promises';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import type { HostCapacity, HostFacts } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { AgentHandlers } from '../handlers.js';

const run = promisify(execFile);

export type Accelerator = 'kvm' | 'tcg';
export type AcceleratorChoice = Accelerator | 'auto';

export interface CpuInfo {
  model: string;
  logicalCpus: number;
  hardwareVirt: boolean;
}

export function parseCpuInfo(text: string): CpuInfo {
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? 'unknown';
  const logicalCpus = (text.match(/^processor\s*:/gm) ?? []).length;
  const flags = /^flags\s*:\s*(.+)$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
  return { model, logicalCpus, hardwareVirt: flags.includes('vmx') || flags.includes('svm') };
}

export function parseMemTotal(meminfo: string): number {
  const kib = /^MemTotal:\s*(\d+)\s*kB$/m.exec(meminfo)?.[1];
  if (kib === undefined)
    throw new CloudError('Internal', 'AGENT_HOST_FACTS', '/proc/meminfo has no MemTotal');
  return Number(kib) * 1024;
}

export async function detectAccelerator(choice: AcceleratorChoice): Promise<Accelerator> {
  if (choice !== 'auto') return choice;
  const cpu = parseCpuInfo(await readFile('/proc/cpuinfo', 'utf8'));
  if (!cpu.hardwareVirt) return 'tcg';
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
    return 'kvm';
  } catch {
    return 'tcg';
  }
}

export async function qemuVersion(binary = 'qemu-system-x86_64'): Promise<string> {
  try {
    const { stdout } = await run(binary, ['--version']);
    return /version\s+(\S+)/.exec(stdout)?.[1] ?? stdout.split('\n')[0]?.trim() ?? 'unknown';
  } catch (err) {
    throw new CloudError(
      'Unavailable',
      'AGENT_QEMU_MISSING',
      `${binary} cannot run: ${(err as Error).message}`,
    );
  }
}

export interface HostFactsOptions {
  accelerator: Accelerator;
  stateDir: string;
}

export function hostHandlers(opts: HostFactsOptions): AgentHandlers {
  return {
    'host.connect': async (): Promise<HostFacts> => {
      const cpu = parseCpuInfo(await readFile('/proc/cpuinfo', 'utf8'));
      return {
        hypervisorType: 'kvm',
        hypervisorVersion: await qemuVersion(),
        hostname: hostname(),
        cpuModel: cpu.model,
        accelerator: opts.accelerator,
      };
    },
    'host.capacity': async (): Promise<HostCapacity> => {
      const cpu = parseCpuInfo(await readFile('/proc/cpuinfo', 'utf8'));
      const memory = parseMemTotal(await readFile('/proc/meminfo', 'utf8'));
      const fs = await statfs(opts.stateDir);
      return { cpu: cpu.logicalCpus, memory, disk: fs.blocks * fs.bsize };
    },
    'host.ping': async () => {
      const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
      return { uptimeSeconds: Math.floor(uptime) };
    },
  };
}
