/**
 * Fencing a kvm host with no BMC: its nimbus-agent fences itself (src/agent/self-fence.ts): once
 * it has heard from no management node AND failed to renew its storage lease for
 * `--self-fence-after` seconds, it kills its guests. The management side cannot ask a silent
 * host anything, so it counts: the host is taken as fenced once it has been silent (since the
 * fence began) for the agents' self-fence time (`hostSelfFenceSeconds`, which must equal their
 * `--self-fence-after`) plus a margin for clock rates and the agent's check interval.
 */
import { CloudError } from '../../kernel/errors.js';
import type { FenceDriver, FenceOutcome, FenceTarget } from './port.js';

export class AgentSelfFence implements FenceDriver {
  readonly method = 'agent-self-fence' as const;

  constructor(
    /** the agents' --self-fence-after, seconds (0: they do not self-fence) */
    private readonly selfFenceSeconds: number,
    private readonly marginSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  async fence(target: FenceTarget): Promise<FenceOutcome> {
    if (this.selfFenceSeconds <= 0)
      throw new CloudError(
        'Invalid',
        'HOST_FENCE_UNAVAILABLE',
        `host ${target.uuid} cannot be fenced: it has no IPMI credentials and agent self-fencing is off (setting hostSelfFenceSeconds)`,
      );
    const due = target.silentSince.getTime() + (this.selfFenceSeconds + this.marginSeconds) * 1000;
    const left = due - this.now();
    if (left <= 0)
      return {
        state: 'fenced',
        method: this.method,
        detail: `silent for more than ${this.selfFenceSeconds} s + ${this.marginSeconds} s: its agent has killed its guests`,
      };
    return {
      state: 'pending',
      method: this.method,
      detail: `waiting ${Math.ceil(left / 1000)} s more for the agent to fence itself`,
      retryAfterMs: left,
    };
  }
}
