/**
 * Nimbus's three-field VM state (kernel/vm-states.ts: state, task, powerState) as Nova's four:
 * `status`, `OS-EXT-STS:vm_state`, `OS-EXT-STS:task_state` and `OS-EXT-STS:power_state`.
 * Transitional Nimbus states keep the vm_state of where the VM comes from and name the
 * operation in task_state, as Nova does (a stopping server is still ACTIVE, task powering-off).
 * Destroyed and Expunging VMs are deleted servers: Nova answers 404 for them (servers.ts).
 */

export interface NovaState {
  status: string;
  vmState: string;
  taskState: string | null;
  powerState: number;
}

/** Nova's power_state codes */
export const POWER = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6 } as const;

const POWER_OF: Record<string, number> = {
  Running: POWER.RUNNING,
  Stopped: POWER.SHUTDOWN,
  Paused: POWER.PAUSED,
  NoState: POWER.NOSTATE,
  Crashed: POWER.CRASHED,
};

/** state → [status, vm_state, task_state] */
const BY_STATE: Record<string, [string, string, string | null]> = {
  Creating: ['BUILD', 'building', 'spawning'],
  Starting: ['SHUTOFF', 'stopped', 'powering-on'],
  Running: ['ACTIVE', 'active', null],
  Stopping: ['ACTIVE', 'active', 'powering-off'],
  Stopped: ['SHUTOFF', 'stopped', null],
  Rebooting: ['REBOOT', 'active', 'rebooting'],
  Pausing: ['ACTIVE', 'active', 'pausing'],
  Paused: ['PAUSED', 'paused', null],
  Resuming: ['PAUSED', 'paused', 'unpausing'],
  Migrating: ['MIGRATING', 'active', 'migrating'],
  Destroying: ['ACTIVE', 'active', 'deleting'],
  Destroyed: ['DELETED', 'deleted', null],
  Expunging: ['DELETED', 'deleted', 'deleting'],
  Error: ['ERROR', 'error', null],
  Unknown: ['UNKNOWN', 'error', null],
};

/** task names of Nimbus operations that run without a state of their own */
const TASK_OF: Record<string, string> = {
  rebuild: 'rebuilding',
  'change-offering': 'resize_prep',
  'attach-volume': 'attaching_volume',
  'detach-volume': 'detaching_volume',
  'create-image': 'image_snapshot',
};

export function novaState(vm: { state: string; task: string | null; powerState: string }): NovaState {
  const [status, vmState, stateTask] = BY_STATE[vm.state] ?? ['UNKNOWN', 'error', null];
  const taskState = stateTask ?? (vm.task ? (TASK_OF[vm.task] ?? vm.task) : null);
  return {
    status: vm.task === 'rebuild' ? 'REBUILD' : status,
    vmState,
    taskState,
    powerState: POWER_OF[vm.powerState] ?? POWER.NOSTATE,
  };
}

/** Nova's `status` list filter → the Nimbus states it covers */
export function statesOfStatus(status: string): string[] {
  return Object.entries(BY_STATE)
    .filter(([, [s]]) => s === status.toUpperCase())
    .map(([state]) => state);
}

/** deleted servers (404 on show, absent from lists) */
export const GONE_STATES = ['Destroyed', 'Expunging'];
