/**
 * @tether/server/adapters/next — a Next.js App Router route handler for an app's router (HTTP
 * batch and SSE subscriptions; WebSocket needs the Node adapter's server).
 */
export { nextRouteHandler } from "../transport/next.ts";
export type { NextRouteHandler, NextRouteHandlerOptions } from "../transport/next.ts";
export type { FetchContextOptions, TransportErrorHandler, TransportErrorInfo } from "../context/index.ts";
