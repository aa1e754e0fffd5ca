/**
 * @tether/server/adapters/node — one Node HTTP server for an app's router: HTTP batch, SSE and
 * WebSocket subscriptions on one port (tRPC's standalone and ws adapters, bound to Tether's
 * context shape, limits and commit header).
 */
export { createTetherServer } from "../transport/server.ts";
export type { ExtraRoutes, TetherServer, TetherServerOptions, TransportStats } from "../transport/server.ts";
export type { TransportLimits } from "../transport/limits.ts";
export type { OriginPolicy } from "../transport/origins.ts";
export type { UpgradeHook, WebSocketKeepAlive } from "../transport/websocket.ts";
export type { NodeContextOptions, TransportErrorHandler, TransportErrorInfo } from "../context/index.ts";
