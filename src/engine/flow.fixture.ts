/** Synthetic chains and recording hooks shared by the flow executor's tests. */

import type { FlowJournal } from '../db/schema.js';
import { CloudError } from '../kernel/errors.js';
import type { FlowDef, StepContext, StepHooks } from './flow.js';

export const NAMES = ['a', 'b', 'c', 'd', 'e'];

export interface Recorder {
  calls: string[];
  saves: FlowJournal[];
  points: string[];
}

export interface Plan {
  /** step whose run throws */
  failRun?: string;
  /** fault point that throws when checked */
  faultAt?: string;
  /** steps whose rollback throws */
  failRollback?: string[];
  /** steps without a rollback */
  noRollback?: string[];
}

export function boom(code: string): CloudError {
  return new CloudError('Internal', code, `${code} happened`);
}

export function flow(rec: Recorder, plan: Plan = {}, names = NAMES): FlowDef<{ n: number }, null> {
  return {
    kind: 'test.chain',
    recovery: 'rollback',
    steps: names.map((name) => ({
      name,
      async run(ctx) {
        rec.calls.push(`run:${name}`);
        ctx.data[name] = `made-${name}`;
        if (plan.failRun === name) throw boom(`RUN_${name.toUpperCase()}`);
      },
      ...(plan.noRollback?.includes(name)
        ? {}
        : {
            async rollback(ctx: StepContext<{ n: number }, null>) {
              rec.calls.push(`rollback:${name}`);
              if (plan.failRollback?.includes(name)) throw boom(`UNDO_${name.toUpperCase()}`);
              delete ctx.data[name];
            },
          }),
    })),
    result: async (ctx) => ({ data: { ...ctx.data }, n: ctx.params.n }),
  };
}

export function recorder(): Recorder {
  return { calls: [], saves: [], points: [] };
}

export function hooks(rec: Recorder, plan: Plan = {}): StepHooks {
  return {
    async save(journal) {
      rec.saves.push(structuredClone(journal));
    },
    async checkFault(point) {
      rec.points.push(point);
      if (plan.faultAt === point) throw boom('INJECTED_FAULT');
    },
  };
}

export function context(): StepContext<{ n: number }, null> {
  return {
    db: undefined as never,
    deps: null,
    job: {
      uuid: 'job-1',
      kind: 'test.chain',
      accountUuid: 'acc',
      userUuid: null,
      resourceKind: null,
      resourceUuid: null,
      requestId: null,
    },
    params: { n: 7 },
    data: {},
    emit: async () => {},
    progress: async () => {},
  };
}

export function journal(over: Partial<FlowJournal> = {}): FlowJournal {
  return { phase: 'forward', done: [], current: null, ctx: {}, ...over };
}

export const runs = (calls: string[]) => calls.filter((c) => c.startsWith('run:')).map((c) => c.slice(4));
export const rollbacks = (calls: string[]) =>
  calls.filter((c) => c.startsWith('rollback:')).map((c) => c.slice(9));
