import type { IncomingMessage, ServerResponse } from "node:http";
import type { AnyRouter, inferRouterContext, ProcedureType, TRPCError } from "@trpc/server";
import type { TRPCRequestInfo } from "@trpc/server/http";

/**
 * What every Tether `createContext` receives, whatever carried the call. tRPC hands each adapter a
 * different shape (`{ req, res, info }` on Node HTTP, the socket as `res` on WebSocket,
 * `{ req, resHeaders }` on fetch); auth and policies should not care, so Tether flattens them here.
 */
export type TetherTransport = "http" | "ws";

/**
 * Strings only: tRPC rejects non-string connection params before `createContext` runs. Values are
 * typed `string | undefined` because that is what reading an arbitrary key gives (tRPC's `Dict`).
 */
export type ConnectionParams = Record<string, string | undefined>;

interface ContextOptionsBase {
  /**
   * `connectionParams` from `createWSClient` (sent as the first message) or `httpSubscriptionLink`
   * (sent in the query string); `null` when the client sent none. Batched queries and mutations
   * never carry them: use headers/cookies there.
   */
  connectionParams: ConnectionParams | null;
  /** tRPC's view of the request (calls, type, abort signal). On WS it describes the connection. */
  info: TRPCRequestInfo;
}

/** A call arriving at the Node server (`createTetherServer`): HTTP batch/SSE or one WS connection. */
export interface NodeContextOptions extends ContextOptionsBase {
  runtime: "node";
  transport: TetherTransport;
  /** The HTTP request, or the upgrade request of the WebSocket (its headers carry the cookies). */
  req: IncomingMessage;
  /** Only on HTTP: a WebSocket connection has no per-call response. */
  res?: ServerResponse;
}

/** A call arriving through a fetch-style handler (Next.js App Router route, `nextRouteHandler`). */
export interface FetchContextOptions extends ContextOptionsBase {
  runtime: "fetch";
  transport: "http";
  req: Request;
  /** Headers added to the response, e.g. `set-cookie`. */
  resHeaders: Headers;
}

/** The union a shared `createContext` can accept; narrow on `runtime` (or `transport`). */
export type TetherContextOptions = NodeContextOptions | FetchContextOptions;

export type MaybePromise<T> = T | Promise<T>;

/** A `createContext` for the given router and options shape. */
export type CreateTetherContext<TRouter extends AnyRouter, TOptions extends TetherContextOptions> = (
  opts: TOptions,
) => MaybePromise<inferRouterContext<TRouter>>;

/** One request header, the same way on every runtime (auth reads cookies/tokens through this). */
export function readHeader(opts: TetherContextOptions, name: string): string | undefined {
  if (opts.runtime === "fetch") return opts.req.headers.get(name) ?? undefined;
  const value = opts.req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** What `onError` hears about a failed call, on any transport. */
export interface TransportErrorInfo {
  error: TRPCError;
  path: string | undefined;
  type: ProcedureType | "unknown";
  transport: TetherTransport;
}

export type TransportErrorHandler = (info: TransportErrorInfo) => void;
