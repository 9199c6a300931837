/**
 * The VMs of this host and their QEMU processes: start, stop, destroy, power state, and the QMP
 * connection of each. Invariants:
 * - a VM is known to this host while `<state-dir>/vms/<uuid>/spec.json` exists; its QEMU runs
 *   while the pidfile names a live process whose cmdline holds the VM's QMP socket path;
 * - operations on one VM run one at a time (a promise chain per VM); different VMs in parallel;
 * - restarting the agent stops nothing: QEMU is daemonized, and the next agent reconnects QMP;
 * - spec.json is the VM's current definition (hot-plugs update it), the one a migration target
 *   and a cold start build the machine from.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SimVmState, VmSpec } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { Accelerator } from '../host/facts.js';
import { qemuArgs } from './command-line.js';
import { makeConfigDrive, wantsConfigDrive } from './config-drive.js';
import { checkVmUuid, type VmPaths, vmPaths, vmsDir } from './layout.js';
import type { NicPlugger } from './nic-plugger.js';
import { killQemu, launchQemu, runningPid, waitExit } from './process.js';
import { Qmp } from './qmp.js';
import { readSerialTail, trimSerialLog } from './serial-log.js';

export interface AgentLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface HypervisorOptions {
  stateDir: string;
  accelerator: Accelerator;
  plugger: NicPlugger;
  /** how long vm.stop waits for the guest to power off after ACPI before forcing */
  stopTimeoutMs: number;
  log: AgentLog;
}

/** QMP run states that mean the guest's vCPUs run. Everything else alive counts as Paused. */
const RUNNING_STATES = new Set(['running', 'debug']);
const STOPPED_STATES = new Set(['shutdown', 'guest-panicked', 'internal-error', 'postmigrate']);

export function vmNotFound(uuid: string): CloudError {
  return new CloudError('NotFound', 'AGENT_VM_NOT_FOUND', `VM ${uuid} is not defined on this host`, {
    details: { vmUuid: uuid },
  });
}

export class Hypervisor {
  private readonly qmps = new Map<string, Qmp>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(readonly opts: HypervisorOptions) {}

  paths(uuid: string): VmPaths {
    return vmPaths(this.opts.stateDir, uuid);
  }

  /** Runs `fn` after every earlier operation on the same VM has finished. */
  serial<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const before = this.queues.get(uuid) ?? Promise.resolve();
    const next = before.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(uuid, tail);
    void tail.then(() => {
      if (this.queues.get(uuid) === tail) this.queues.delete(uuid);
    });
    return next;
  }

  async known(): Promise<string[]> {
    const names = await readdir(vmsDir(this.opts.stateDir)).catch(() => [] as string[]);
    const out: string[] = [];
    for (const name of names) if ((await this.readSpec(name)) !== undefined) out.push(name);
    return out;
  }

  async readSpec(uuid: string): Promise<VmSpec | undefined> {
    const text = await readFile(this.paths(uuid).spec, 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as VmSpec);
  }

  async specOf(uuid: string): Promise<VmSpec> {
    const spec = await this.readSpec(checkVmUuid(uuid));
    if (spec === undefined) throw vmNotFound(uuid);
    return spec;
  }

  async writeSpec(spec: VmSpec): Promise<void> {
    const paths = this.paths(spec.uuid);
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    await writeFile(`${paths.spec}.tmp`, JSON.stringify(spec, null, 2));
    await rename(`${paths.spec}.tmp`, paths.spec);
  }

  pid(uuid: string): Promise<number | undefined> {
    return runningPid(this.paths(uuid));
  }

  /** The VM's QMP connection (made on first use, remade after a close); refuses a VM not running. */
  async qmp(uuid: string): Promise<Qmp> {
    const open = this.qmps.get(uuid);
    if (open !== undefined && !open.closed) return open;
    if ((await this.pid(uuid)) === undefined) {
      if ((await this.readSpec(uuid)) === undefined) throw vmNotFound(uuid);
      throw new CloudError('Conflict', 'AGENT_VM_NOT_RUNNING', `VM ${uuid} is not running on this host`, {
        details: { vmUuid: uuid },
      });
    }
    const qmp = await Qmp.connect(this.paths(uuid).qmp);
    qmp.once('close', () => {
      if (this.qmps.get(uuid) === qmp) this.qmps.delete(uuid);
    });
    this.qmps.set(uuid, qmp);
    return qmp;
  }

  /** At agent start: reconnect QMP to every VM whose QEMU still runs. */
  async recover(): Promise<{ running: string[]; stopped: string[] }> {
    const running: string[] = [];
    const stopped: string[] = [];
    for (const uuid of await this.known()) {
      const pid = await this.pid(uuid);
      if (pid === undefined) {
        stopped.push(uuid);
        continue;
      }
      try {
        await this.qmp(uuid);
        running.push(uuid);
        this.opts.log.info({ vmUuid: uuid, pid }, 'found running VM');
      } catch (err) {
        this.opts.log.warn({ vmUuid: uuid, pid, err: (err as Error).message }, 'running VM without QMP');
      }
    }
    return { running, stopped };
  }

  async powerState(uuid: string): Promise<SimVmState> {
    if ((await this.pid(uuid)) === undefined) return 'Stopped';
    try {
      const { status } = await (await this.qmp(uuid)).execute<{ status: string }>('query-status');
      if (RUNNING_STATES.has(status)) return 'Running';
      return STOPPED_STATES.has(status) ? 'Stopped' : 'Paused';
    } catch (err) {
      // alive but not answering: the process runs, and a caller must not think it is stopped
      this.opts.log.warn({ vmUuid: uuid, err: (err as Error).message }, 'query-status failed');
      return (await this.pid(uuid)) === undefined ? 'Stopped' : 'Running';
    }
  }

  /** Starts the VM unless it runs (idempotent); `incoming` makes it wait for a live migration. */
  start(vm: VmSpec, incoming?: string): Promise<SimVmState> {
    const uuid = checkVmUuid(vm?.uuid, 'vm.uuid');
    return this.serial(uuid, () => this.startUnqueued(vm, incoming));
  }

  async startUnqueued(vm: VmSpec, incoming?: string): Promise<SimVmState> {
    const uuid = checkVmUuid(vm?.uuid, 'vm.uuid');
    {
      if ((await this.pid(uuid)) !== undefined) return this.powerState(uuid);
      const paths = this.paths(uuid);
      // validate before touching anything: a bad spec changes nothing
      qemuArgs(vm, {
        accelerator: this.opts.accelerator,
        paths,
        taps: new Map(vm.nics.map((n) => [n.uuid, 'check'])),
        configDrive: false,
      });
      await this.writeSpec(vm);
      await rm(paths.qmp, { force: true });
      await rm(paths.pid, { force: true });
      const taps = new Map<string, string>();
      try {
        for (const nic of vm.nics) taps.set(nic.uuid, await this.opts.plugger.ensureTap(nic));
        const configDrive = wantsConfigDrive(vm);
        if (configDrive) await makeConfigDrive(vm, paths.configDrive);
        await trimSerialLog(paths.serial); // QEMU appends to it: keep it bounded across starts
        const args = qemuArgs(vm, { accelerator: this.opts.accelerator, paths, taps, configDrive, incoming });
        await launchQemu(args);
      } catch (err) {
        for (const nicUuid of taps.keys()) await this.opts.plugger.removeTap(nicUuid).catch(() => undefined);
        throw err;
      }
      this.opts.log.info({ vmUuid: uuid, pid: await this.pid(uuid), incoming }, 'VM started');
      return this.powerState(uuid);
    }
  }

  /** The end of a VM's serial log (serial-log.ts): any VM defined here, running or not. */
  async serialLog(uuid: string, tailBytes: unknown): Promise<{ log: string; size: number }> {
    checkVmUuid(uuid);
    if ((await this.readSpec(uuid)) === undefined) throw vmNotFound(uuid);
    return readSerialTail(this.paths(uuid).serial, tailBytes);
  }

  /**
   * ACPI power-off, waiting `stopTimeoutMs`, then quit and SIGKILL; `force` kills at once.
   * A VM this host does not have is success, as for destroy: "not running here" already holds,
   * and a management node rolling back a failed vm.start (which may have failed before the VM
   * was defined) must not be refused (the simulator answers the same; test/conformance).
   */
  stop(uuid: string, force: boolean): Promise<void> {
    return this.serial(checkVmUuid(uuid), async () => {
      const spec = await this.readSpec(uuid);
      if (spec !== undefined) await this.stopUnqueued(spec, force);
    });
  }

  async stopUnqueued(spec: VmSpec, force: boolean): Promise<void> {
    const paths = this.paths(spec.uuid);
    const pid = await this.pid(spec.uuid);
    if (pid !== undefined && !force) {
      const qmp = await this.qmp(spec.uuid);
      await qmp.execute('system_powerdown').catch(() => undefined);
      if (!(await waitExit(pid, paths, this.opts.stopTimeoutMs))) {
        this.opts.log.warn({ vmUuid: spec.uuid, pid }, 'guest ignored ACPI power-off; quitting QEMU');
        await qmp.execute('quit').catch(() => undefined);
        await waitExit(pid, paths, 5000);
      }
    }
    if (pid !== undefined && force) {
      // a clean exit closes the disks: the client of a network disk lets go of it at once (an
      // RBD image a killed QEMU held keeps its watcher ~30 s, and cannot be removed until then)
      const qmp = await this.qmp(spec.uuid).catch(() => undefined);
      if (qmp !== undefined) {
        await Promise.race([qmp.execute('quit').catch(() => undefined), sleep(2000)]);
        await waitExit(pid, paths, 3000);
      }
    }
    if (pid !== undefined) await killQemu(pid, paths);
    this.qmps.get(spec.uuid)?.close();
    this.qmps.delete(spec.uuid);
    for (const nic of spec.nics) await this.opts.plugger.removeTap(nic.uuid);
    await rm(paths.qmp, { force: true });
    await rm(paths.pid, { force: true });
    await rm(paths.incoming, { force: true });
  }

  /** Kills the VM and forgets it (a VM this host does not have is success). */
  destroy(uuid: string): Promise<void> {
    return this.serial(checkVmUuid(uuid), async () => {
      const spec = await this.readSpec(uuid);
      // disks made for an incoming migration that never completed go with the VM
      const incoming = await readFile(this.paths(uuid).incoming, 'utf8').catch(() => undefined);
      if (spec !== undefined) await this.stopUnqueued(spec, true);
      const made = incoming === undefined ? [] : ((JSON.parse(incoming) as { made?: string[] }).made ?? []);
      for (const path of made) await rm(path, { force: true });
      await rm(this.paths(uuid).dir, { recursive: true, force: true });
    });
  }

  /** A QMP command on a running VM, queued behind the VM's other operations. */
  execute(uuid: string, command: string, args?: Record<string, unknown>): Promise<unknown> {
    return this.serial(checkVmUuid(uuid), async () => (await this.qmp(uuid)).execute(command, args));
  }

  async list(): Promise<Array<{ uuid: string; state: SimVmState }>> {
    const out: Array<{ uuid: string; state: SimVmState }> = [];
    for (const uuid of await this.known()) out.push({ uuid, state: await this.powerState(uuid) });
    return out;
  }

  /** Closes QMP connections (the guests keep running). */
  close(): void {
    for (const qmp of this.qmps.values()) qmp.close();
    this.qmps.clear();
  }
}
