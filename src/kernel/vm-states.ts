/**
 * The VM state machine: the one place that decides which operation is allowed in which state.
 * A VM's state is three fields (as in Nova): `state` (what the platform says), `task` (the
 * operation in flight, if any) and `powerState` (what the hypervisor last reported).
 *
 * An operation is admitted by one conditional UPDATE: `state in from and task is null` →
 * `state = during, task = op`. It ends in `to` on success, or back in the state it came from
 * when its chain rolls back. Transitional (-ing) states never outlive their operation.
 */
import { CloudError } from './errors.js';

export const VM_STATES = [
  'Creating',
  'Starting',
  'Running',
  'Stopping',
  'Stopped',
  'Rebooting',
  'Pausing',
  'Paused',
  'Resuming',
  'Migrating',
  'Destroying',
  'Destroyed',
  'Expunging',
  'Error',
  'Unknown',
] as const;
export type VmState = (typeof VM_STATES)[number];

export const POWER_STATES = ['Running', 'Stopped', 'Paused', 'NoState', 'Crashed'] as const;
export type PowerState = (typeof POWER_STATES)[number];

export const TRANSITIONAL_STATES: readonly VmState[] = [
  'Creating',
  'Starting',
  'Stopping',
  'Rebooting',
  'Pausing',
  'Resuming',
  'Migrating',
  'Destroying',
  'Expunging',
];

export type VmOperation =
  | 'start'
  | 'stop'
  | 'reboot'
  | 'pause'
  | 'resume'
  | 'change-offering'
  | 'migrate'
  | 'destroy'
  | 'recover'
  | 'expunge'
  | 'attach-volume'
  | 'detach-volume'
  | 'rebuild';

export interface Transition {
  from: readonly VmState[];
  /** the state while the operation runs (absent: the state does not change while it runs) */
  during?: VmState;
  /** the state on success; absent for expunge (the VM is gone) and for state-preserving operations */
  to?: VmState;
}

const LIVE: readonly VmState[] = ['Running', 'Stopped', 'Paused'];

export const TRANSITIONS: Record<VmOperation, Transition> = {
  start: { from: ['Stopped'], during: 'Starting', to: 'Running' },
  stop: { from: ['Running', 'Paused', 'Unknown', 'Error'], during: 'Stopping', to: 'Stopped' },
  reboot: { from: ['Running'], during: 'Rebooting', to: 'Running' },
  pause: { from: ['Running'], during: 'Pausing', to: 'Paused' },
  resume: { from: ['Paused'], during: 'Resuming', to: 'Running' },
  'change-offering': { from: ['Stopped'] },
  migrate: { from: ['Running'], during: 'Migrating', to: 'Running' },
  destroy: {
    from: ['Running', 'Stopped', 'Paused', 'Error', 'Unknown'],
    during: 'Destroying',
    to: 'Destroyed',
  },
  recover: { from: ['Destroyed'], to: 'Stopped' },
  expunge: { from: ['Destroyed'], during: 'Expunging' },
  'attach-volume': { from: LIVE },
  'detach-volume': { from: LIVE },
  // a fresh root disk from the VM's image; the VM stays Stopped (compute/vm/rebuild.ts)
  rebuild: { from: ['Stopped'] },
};

export function isTransitional(state: VmState): boolean {
  return TRANSITIONAL_STATES.includes(state);
}

export function canRun(op: VmOperation, state: VmState, task: string | null): boolean {
  return task === null && TRANSITIONS[op].from.includes(state);
}

/** The refusal for an operation that the VM's current state or task does not allow. */
export function refusal(vmUuid: string, op: VmOperation, state: VmState, task: string | null): CloudError {
  if (task !== null) {
    return new CloudError(
      'Conflict',
      'VM_BUSY',
      `vm ${vmUuid} is busy with '${task}'; ${op} must wait until it ends`,
      {
        details: { state, task, operation: op },
        retryable: true,
      },
    );
  }
  const allowed = TRANSITIONS[op].from.join(', ');
  return new CloudError(
    'Conflict',
    'VM_INVALID_STATE',
    `cannot ${op} vm ${vmUuid}: it is ${state}; ${op} needs ${allowed}`,
    {
      details: { state, operation: op, allowedStates: TRANSITIONS[op].from },
    },
  );
}
