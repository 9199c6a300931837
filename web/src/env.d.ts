/** The catalog scripts/build-web.mjs derives from the contract and the query schemas at build time. */
declare module 'virtual:nimbus-catalog' {
  import type { Catalog } from './api/catalog-types';

  const catalog: Catalog;
  export default catalog;
}
declare module '*.css';

/**
 * noVNC's RFB client when @novnc/novnc is installed, else null (scripts/build-web.mjs). The few
 * members the console page uses (docs/API.md of noVNC).
 */
declare module 'virtual:novnc' {
  export interface Rfb extends EventTarget {
    scaleViewport: boolean;
    resizeSession: boolean;
    viewOnly: boolean;
    disconnect(): void;
    sendCtrlAltDel(): void;
    focus(): void;
  }
  const RFB: null | (new (target: HTMLElement, url: string, options?: Record<string, unknown>) => Rfb);
  export default RFB;
}
