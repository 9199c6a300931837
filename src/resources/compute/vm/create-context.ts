/** What the VM create chain's steps share: their context type and the placement they hand on. */
import type { FlowStep } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import type { FlowDeps } from '../../service.js';
import type { VmCreateParams } from './model.js';
import type { VmCtx } from './runtime.js';

export type Step = FlowStep<VmCreateParams, FlowDeps>;
export type Ctx = VmCtx<VmCreateParams>;

export interface Placed {
  hostUuid: string;
  primaryStorageUuid: string;
  local: boolean;
}

export const placed = (ctx: Ctx): Placed => {
  const p = ctx.data.placed as Placed | undefined;
  if (!p) throw new CloudError('Internal', 'VM_NOT_PLACED', 'the create chain lost its placement');
  return p;
};
