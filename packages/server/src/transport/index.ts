export { createTetherServer } from "./server.ts";
export { DEFAULT_TRANSPORT_LIMITS } from "./limits.ts";
export type { TransportLimits } from "./limits.ts";
export type { OriginPolicy } from "./origins.ts";
export type { ExtraRoutes, TetherServer, TetherServerOptions, TransportStats } from "./server.ts";
export { nextRouteHandler } from "./next.ts";
export type { NextRouteHandler, NextRouteHandlerOptions } from "./next.ts";
export type { UpgradeHook, WebSocketKeepAlive } from "./websocket.ts";
