/**
 * The healing ladder of a leased VM, pure: which VM operation each step of each stage runs.
 *
 *   restart   a stop (only for a VM in Error), then a start on the host it was on
 *   rebuild   a fresh root disk from its image (vm.rebuild), then a start on the same host
 *   migrate   a start on any other host (the host is the problem once a restart and a rebuild
 *             both failed there); a VM whose disk is on local storage cannot move, so this fails
 *             and the VM is Unhealable
 * A stage fails when one of its jobs fails (or the VM's state refuses a step); the next stage
 * begins. After migrate there is none: the lease is marked Unhealable and its holder told.
 */
import type { HealStage } from '../../../db/schema-pool-health.js';
import type { VmOperation } from '../../../kernel/vm-states.js';

export interface HealStep {
  op: VmOperation;
  params: Record<string, unknown>;
  /** the step is skipped when the VM is not in one of these states (a stop of a VM already Stopped) */
  onlyFrom?: string[];
}

export const STAGE_ORDER: readonly HealStage[] = ['restart', 'rebuild', 'migrate'];

export function stageSteps(stage: HealStage, host: string | null): HealStep[] {
  const there = host ? { hostUuid: host } : {};
  switch (stage) {
    case 'restart':
      return [
        { op: 'stop', params: { force: true }, onlyFrom: ['Error'] },
        { op: 'start', params: there },
      ];
    case 'rebuild':
      return [
        { op: 'rebuild', params: {} },
        { op: 'start', params: there },
      ];
    case 'migrate':
      return [{ op: 'start', params: host ? { excludeHosts: [host] } : {} }];
  }
}

export function nextStage(stage: HealStage): HealStage | undefined {
  return STAGE_ORDER[STAGE_ORDER.indexOf(stage) + 1];
}

/**
 * The request id of one step's job (`try`: the how-manieth job of that step), found again after a
 * crash instead of being submitted twice. A job cut by its node's death (JOB_INTERRUPTED) says
 * nothing about the VM: the step is tried again, up to STEP_TRIES jobs, before the stage fails.
 */
export const stepRequestId = (vmUuid: string, startedAt: Date, stage: HealStage, step: number, attempt = 0) =>
  `${stepPrefix(vmUuid, startedAt, stage, step)}:${attempt}`;

export const stepPrefix = (vmUuid: string, startedAt: Date, stage: HealStage, step: number) =>
  `heal:${vmUuid}:${new Date(startedAt).getTime()}:${stage}:${step}`;

export const STEP_TRIES = 3;
