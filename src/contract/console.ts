/**
 * The VM console (VNC) on the wire, both legs:
 * - client ↔ management node: `POST /v1/vms/{uuid}/actions/console` answers a VmConsole (a
 *   WebSocket URL with a short-lived, single-use token); the WebSocket at `/v1/console?token=…`
 *   then carries the RFB (VNC) byte stream in binary frames, as noVNC expects;
 * - management node ↔ agent: `GET /v1/vms/<uuid>/console` with `Connection: Upgrade`,
 *   `Upgrade: nimbus-vnc` and the agent's bearer secret; the agent answers `101 Switching
 *   Protocols` and the connection becomes the raw bytes of the VM's VNC socket, or answers the
 *   agent's one error shape (no such VM, not running) and closes.
 */
import { type Static, Type } from 'typebox';

export const CONSOLE_WEBSOCKET_PATH = '/v1/console';
/** the Upgrade token of the agent's console tunnel (a plain byte stream, not a WebSocket) */
export const AGENT_CONSOLE_UPGRADE = 'nimbus-vnc';
export const agentConsolePath = (vmUuid: string) => `/v1/vms/${encodeURIComponent(vmUuid)}/console`;
export const AGENT_CONSOLE_PATH = /^\/v1\/vms\/([^/?]+)\/console$/;

export const VmConsole = Type.Object({
  url: Type.String({
    description: 'the WebSocket to open (ws: or wss: like the request), the token in its query',
  }),
  token: Type.String({ description: 'single use, bound to this VM and the calling account' }),
  expiresAt: Type.String({ format: 'date-time', description: 'open the WebSocket before this' }),
  protocol: Type.Literal('vnc', { description: 'the WebSocket carries RFB (VNC) in binary frames' }),
});
export type VmConsole = Static<typeof VmConsole>;
