/**
 * The appliance VMs this host realises itself, one file each: `<state-dir>/appliances/<vm>.json`
 * = `{vmUuid, routerUuid, state}`. The file is the VM's definition on this host (as spec.json is
 * for a QEMU guest): written by vm.start, kept by vm.stop (state Stopped), removed by vm.destroy,
 * and read again by a restarted agent. Written atomically (temp file + rename).
 * Also: one operation at a time per appliance VM (`serial`).
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloudError } from '../../kernel/errors.js';
import { checkVmUuid } from '../qemu/layout.js';

export interface ApplianceRecord {
  vmUuid: string;
  routerUuid: string;
  /** what the management side last asked: Running after vm.start, Stopped after vm.stop */
  state: 'Running' | 'Stopped';
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** a VmSpec's `appliance`, checked: the router uuid names the namespace, so it must be a uuid */
export function checkAppliance(appliance: unknown): { type: 'virtual-router'; routerUuid: string } {
  const a = appliance as { type?: unknown; routerUuid?: unknown } | null;
  const problems: string[] = [];
  if (a === null || typeof a !== 'object') problems.push('vm.appliance: an object');
  else {
    if (a.type !== 'virtual-router')
      problems.push(`vm.appliance.type: 'virtual-router', got ${String(a.type)}`);
    if (typeof a.routerUuid !== 'string' || !UUID_RE.test(a.routerUuid))
      problems.push('vm.appliance.routerUuid: a uuid');
  }
  if (problems.length > 0) {
    throw new CloudError('Invalid', 'HOST_APPLIANCE_INVALID', problems.join('; '), {
      details: { field: 'vm.appliance', problems },
    });
  }
  return { type: 'virtual-router', routerUuid: (a as { routerUuid: string }).routerUuid };
}

export class ApplianceRecords {
  private readonly dir: string;
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'appliances');
  }

  private file(vmUuid: string): string {
    return join(this.dir, `${checkVmUuid(vmUuid)}.json`);
  }

  async get(vmUuid: string): Promise<ApplianceRecord | undefined> {
    const text = await readFile(this.file(vmUuid), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return text === undefined ? undefined : (JSON.parse(text) as ApplianceRecord);
  }

  async all(): Promise<ApplianceRecord[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: ApplianceRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const record = await this.get(name.slice(0, -'.json'.length)).catch(() => undefined);
      if (record) out.push(record);
    }
    return out;
  }

  async put(record: ApplianceRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(record.vmUuid);
    await writeFile(`${file}.tmp`, JSON.stringify(record));
    await rename(`${file}.tmp`, file);
  }

  async drop(vmUuid: string): Promise<void> {
    await rm(this.file(vmUuid), { force: true });
  }

  /** runs `fn` after every earlier call for the same VM has finished (failed ones too) */
  serial<T>(vmUuid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(vmUuid) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.chains.set(vmUuid, settled);
    void settled.then(() => {
      if (this.chains.get(vmUuid) === settled) this.chains.delete(vmUuid);
    });
    return next;
  }
}
