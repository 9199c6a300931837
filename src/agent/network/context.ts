/** What every file of the network part shares: its names, its remembered state, its options. */
import type { Names } from './names.js';
import type { NetworkState } from './state.js';

/** pino's shape (the agent passes its logger); absent = silent */
export interface NetworkLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface PartContext {
  names: Names;
  state: NetworkState;
  stateDir: string;
  /** this host's VXLAN tunnel endpoint address (required once a vxlan bridge is asked for) */
  vtepIp: string | undefined;
  log: NetworkLog;
  /** loads the persisted state once (every entry point awaits it) */
  ready(): Promise<void>;
}
