import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { AnyRouter } from "@trpc/server";
import {
  createHTTPHandler,
  type CreateHTTPContextOptions,
  type CreateHTTPHandlerOptions,
} from "@trpc/server/adapters/standalone";
import { createLogger, type Logger } from "../log/index.ts";
import type {
  CreateTetherContext,
  NodeContextOptions,
  TransportErrorHandler,
  TransportErrorInfo,
} from "../context/index.ts";
import { commitResponseMeta } from "./commitHeader.ts";
import { transportLimits, type TransportLimits } from "./limits.ts";
import { isForeignCookieRequest, nodeHeaders, refuseForeignOrigin, type OriginPolicy } from "./origins.ts";
import { normalizeBasePath, pathMatches, requestPathname } from "./paths.ts";
import { attachWebSocketTransport, type UpgradeHook, type WebSocketKeepAlive } from "./websocket.ts";

/** Serves a request outside the tRPC path (e.g. `/metrics`, `/healthz`). True when it answered. */
export type ExtraRoutes = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface TetherServerOptions<TRouter extends AnyRouter> {
  router: TRouter;
  createContext: CreateTetherContext<TRouter, NodeContextOptions>;
  /** 0 picks a free port (tests). */
  port?: number;
  host?: string;
  /** Where tRPC lives, for HTTP and for WebSocket upgrades. Default "/trpc". */
  path?: string;
  /** Overrides of `DEFAULT_TRANSPORT_LIMITS` (body, batch, send budget, in-flight calls). */
  limits?: Partial<TransportLimits>;
  /**
   * Which browser origins may use cookies here: requests and WebSocket upgrades that carry a cookie
   * and an `Origin` other than the server's own host (or `allowedOrigins`) get 403.
   */
  origins?: OriginPolicy;
  /** WebSocket heartbeat; see `WebSocketKeepAlive`. Default enabled, tRPC's 30 s / 5 s. */
  keepAlive?: WebSocketKeepAlive;
  /** Requests outside `path`; unanswered ones get 404. */
  extraRoutes?: ExtraRoutes;
  /** Upgrades outside `path` (Next.js HMR in a custom server); untaken ones are destroyed. */
  onUpgrade?: UpgradeHook;
  /** Every failed call on either transport. Default: log (error level for INTERNAL_SERVER_ERROR). */
  onError?: TransportErrorHandler;
  log?: Logger;
  /** How long `close()` lets in-flight requests and WS closing handshakes finish, ms. Default 1000. */
  closeGraceMs?: number;
}

export interface TransportStats {
  wsConnections: number;
  /** Open SSE (`httpSubscriptionLink`) streams. */
  sseConnections: number;
  /** WebSocket clients cut off for not reading, since start. */
  slowConsumersTerminated: number;
  /**
   * Most unsent bytes any WebSocket held right after a frame was handed to it, since start: stays
   * within `limits.maxBufferedBytesPerConnection` (or one frame, when a single frame is larger).
   */
  maxConnectionBufferedBytes: number;
  /** HTTP requests and WebSocket upgrades refused for carrying a cookie from a foreign origin. */
  foreignOriginsRefused: number;
}

export interface TetherServer {
  server: Server;
  /** `http://host:port`, no path. */
  url: string;
  /** `ws://host:port/<path>`, ready for `createWSClient`. */
  wsUrl: string;
  port: number;
  stats(): TransportStats;
  /** Tells every WebSocket client to reconnect (they resume via tracked ids), e.g. before a deploy. */
  broadcastReconnect(): void;
  /** Stops listening and ends every connection (SSE streams and WS clients included); idempotent. */
  close(): Promise<void>;
}

/**
 * One port for everything: tRPC HTTP (batched queries/mutations, SSE subscriptions) and tRPC over
 * WebSocket on the same server's `upgrade`, plus whatever `extraRoutes` serves.
 */
export async function createTetherServer<TRouter extends AnyRouter>(
  options: TetherServerOptions<TRouter>,
): Promise<TetherServer> {
  const log = options.log ?? createLogger("tether:transport");
  const host = options.host ?? "127.0.0.1";
  const path = normalizeBasePath(options.path ?? "/trpc");
  const limits = transportLimits(options.limits);
  const origins = options.origins ?? {};
  let foreignHttpRefused = 0;
  const closeGraceMs = options.closeGraceMs ?? 1000;
  const onError = options.onError ?? defaultErrorLogger(log);

  const createContext = (opts: CreateHTTPContextOptions) =>
    options.createContext({
      runtime: "node",
      transport: "http",
      req: opts.req,
      res: opts.res,
      connectionParams: opts.info.connectionParams,
      info: opts.info,
    });
  // The standalone handler (not `createHTTPServer`) because the server must also route other paths
  // and upgrades. It runs tRPC's resolveResponse, so SSE subscriptions work as in every adapter, and
  // it enforces `maxBodySize` while streaming the body (PAYLOAD_TOO_LARGE, without buffering it).
  // The cast: tRPC types `createContext` through a conditional a generic router cannot resolve.
  const trpcHandler = createHTTPHandler<TRouter>({
    router: options.router,
    basePath: path,
    maxBodySize: limits.maxBodyBytes,
    maxBatchSize: limits.maxBatchSize,
    createContext,
    responseMeta: commitResponseMeta,
    onError: ({ error, path: procedurePath, type }) =>
      onError({ error, path: procedurePath, type, transport: "http" }),
  } as CreateHTTPHandlerOptions<TRouter>);

  // Tracked only to count them and to end them on close. SSE needs no slow-consumer watchdog:
  // tRPC's node-http writer awaits 'drain', so a stalled reader pauses the subscription's iterator
  // instead of buffering (a push-fed queue behind that iterator must bound itself).
  const sseStreams = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    if (pathMatches(requestPathname(req), path)) {
      // Before tRPC: nothing of a cross-site request that carries the user's cookie may run.
      if (isForeignCookieRequest(nodeHeaders(req), origins)) {
        foreignHttpRefused += 1;
        refuseForeignOrigin(res, options.router, path);
        return;
      }
      // EventSource always asks for text/event-stream; nothing else tRPC serves does.
      if (req.method === "GET" && req.headers.accept?.includes("text/event-stream")) {
        sseStreams.add(res);
        res.once("close", () => sseStreams.delete(res));
      }
      trpcHandler(req, res);
      return;
    }
    void serveOther(req, res);
  });
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // A request's headers must be allowed longer than an idle connection lives (Node's advice).
  server.headersTimeout = Math.max(server.headersTimeout, limits.keepAliveTimeoutMs + 1_000);

  async function serveOther(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (options.extraRoutes && (await options.extraRoutes(req, res))) return;
      if (!res.headersSent) res.writeHead(404, { "content-type": "text/plain" });
      res.end("Not Found");
    } catch (error) {
      log.error({ err: error, url: req.url }, "extra route failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end();
    }
  }

  const ws = attachWebSocketTransport({
    server,
    router: options.router,
    createContext: options.createContext,
    path,
    limits,
    origins,
    keepAlive: options.keepAlive ?? { enabled: true },
    onUpgrade: options.onUpgrade,
    onError,
    log,
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const authority = `${host.includes(":") ? `[${host}]` : host}:${port}`;

  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    // SSE streams never finish on their own; clients reconnect (and resume) elsewhere.
    for (const res of sseStreams) res.destroy();
    server.closeIdleConnections();
    // In-flight batch requests get the grace period, then everything still open is cut.
    const cutoff = setTimeout(() => server.closeAllConnections(), closeGraceMs);
    await Promise.all([ws.close(closeGraceMs), httpClosed]);
    clearTimeout(cutoff);
  };

  return {
    server,
    url: `http://${authority}`,
    wsUrl: `ws://${authority}${path === "/" ? "" : path}`,
    port,
    stats: () => ({
      wsConnections: ws.connections(),
      sseConnections: sseStreams.size,
      slowConsumersTerminated: ws.slowConsumersTerminated(),
      maxConnectionBufferedBytes: ws.maxBufferedBytes(),
      foreignOriginsRefused: foreignHttpRefused + ws.foreignOriginsRefused(),
    }),
    broadcastReconnect: () => ws.broadcastReconnect(),
    close: () => (closed ??= close()),
  };
}

/** Client mistakes are routine (debug); only server faults deserve the error log. */
function defaultErrorLogger(log: Logger): TransportErrorHandler {
  return ({ error, path, type, transport }: TransportErrorInfo) => {
    const fields = { err: error, code: error.code, path, type, transport };
    if (error.code === "INTERNAL_SERVER_ERROR") log.error(fields, "tRPC call failed");
    else log.debug(fields, "tRPC call rejected");
  };
}
