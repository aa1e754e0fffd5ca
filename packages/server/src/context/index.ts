/**
 * What every `createContext` receives, whatever carried the call (HTTP, WebSocket, fetch). Its own
 * concern so that auth (which reads it) and the transports (which build it) both depend on it and
 * not on each other.
 */
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
