/**
 * The shape of the build-time catalog (scripts/build-web.mjs): every kind of the contract registry
 * (with its create body and cross-field rules, without its update body), plus what the query language knows of it. Types only: the data comes
 * from `virtual:nimbus-catalog`, so the console never bundles TypeBox or server code.
 */
import type { KindContract } from '../../../src/contract/kind-contract.js';
import type { KindSchema } from '../../../src/engine/query/schema.js';

export type CatalogKind = Omit<KindContract, 'update'> & {
  creatable: boolean;
  updatable: boolean;
};
export type QueryInfo = Required<Pick<KindSchema, 'fields' | 'relations' | 'visibility' | 'key'>> &
  Pick<KindSchema, 'defaultSort'>;

export interface Catalog {
  kinds: CatalogKind[];
  query: Record<string, QueryInfo>;
  vmStates: string[];
  jobStates: string[];
}
