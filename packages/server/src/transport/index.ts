export { createTetherServer } from "./server.ts";
export { DEFAULT_MAX_BODY_BYTES, DEFAULT_SLOW_CONSUMER_BYTES } from "./limits.ts";
export type { ExtraRoutes, TetherServer, TetherServerOptions, TransportStats } from "./server.ts";
export { nextRouteHandler } from "./next.ts";
export type { NextRouteHandler, NextRouteHandlerOptions } from "./next.ts";
export type { UpgradeHook, WebSocketKeepAlive } from "./websocket.ts";
export { readHeader } from "./contextOptions.ts";
export type {
  ConnectionParams,
  CreateTetherContext,
  FetchContextOptions,
  NodeContextOptions,
  TetherContextOptions,
  TetherTransport,
  TransportErrorHandler,
  TransportErrorInfo,
} from "./contextOptions.ts";
