/**
 * What the network part remembers across agent restarts, in `<stateDir>/network-state.json`:
 * the last applied version of each full-state part (bridges, dhcp, sg) and of each router, and
 * the bridges it made (their names come from the management side, so they carry no prefix and
 * cleanup needs the list), and the TAPs it plugged with their bridges. Written atomically (temp file + rename) after each apply succeeds: a
 * failed apply keeps the old version, so the same version retried is applied.
 * Also: one apply at a time per part (`serial`), so two requests never interleave their commands.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface PersistedState {
  versions: { bridges: number; dhcp: number; sg: number };
  routers: Record<string, number>;
  /** bridge name → the uplink it enslaved (physical interface or VLAN sub-interface), if any */
  bridges: Record<string, { uplink: string | null; uplinkMade: boolean }>;
  /** TAPs the plugger made → their bridge (re-attached when the bridge is remade) */
  taps: Record<string, string>;
}

export class NetworkState {
  private data: PersistedState = {
    versions: { bridges: 0, dhcp: 0, sg: 0 },
    routers: {},
    bridges: {},
    taps: {},
  };
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly file: string;

  constructor(readonly stateDir: string) {
    this.file = join(stateDir, 'network-state.json');
  }

  async load(): Promise<void> {
    await mkdir(this.stateDir, { recursive: true });
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as Partial<PersistedState>;
      this.data = {
        versions: { bridges: 0, dhcp: 0, sg: 0, ...parsed.versions },
        routers: parsed.routers ?? {},
        bridges: parsed.bridges ?? {},
        taps: parsed.taps ?? {},
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  get(): PersistedState {
    return this.data;
  }

  /** one write at a time, each of the state as it is then: the last write is the newest state */
  save(): Promise<void> {
    return this.serial('save', async () => {
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(this.data, null, 2));
      await rename(tmp, this.file);
    });
  }

  /** runs `fn` after every earlier call with the same key has finished (failed ones too) */
  serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.chains.set(key, settled);
    void settled.then(() => {
      if (this.chains.get(key) === settled) this.chains.delete(key);
    });
    return next;
  }
}
