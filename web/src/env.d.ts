/** The catalog scripts/build-web.mjs derives from the contract and the query schemas at build time. */
declare module 'virtual:nimbus-catalog' {
  import type { Catalog } from './api/catalog-types';

  const catalog: Catalog;
  export default catalog;
}
declare module '*.css';
