/** The catalog scripts/build-web.mjs derives from the contract and the query schemas at build time. */
declare module 'virtual:nimbus-catalog' {
  import type { Catalog } from './api/catalog-types';

  const catalog: Catalog;
  export default catalog;
}
declare module '*.css';

/** noVNC's RFB client (@novnc/novnc ships no types): the members the console page uses (its docs/API.md). */
declare module '@novnc/novnc' {
  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, url: string, options?: Record<string, unknown>);
    scaleViewport: boolean;
    resizeSession: boolean;
    viewOnly: boolean;
    disconnect(): void;
    sendCtrlAltDel(): void;
    focus(): void;
  }
}
