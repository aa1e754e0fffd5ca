import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { AnyRouter } from "@trpc/server";
import type { CreateWSSContextFnOptions, WSSHandlerOptions } from "@trpc/server/adapters/ws";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "../log/index.ts";
import type { CreateTetherContext, NodeContextOptions, TransportErrorHandler } from "../context/index.ts";
import type { TransportLimits } from "./limits.ts";
import { isForeignCookieRequest, nodeHeaders, refuseForeignUpgrade, type OriginPolicy } from "./origins.ts";
import { pathMatches, requestPathname } from "./paths.ts";
import { serveConnection } from "./wsConnection.ts";

/**
 * tRPC's application-level heartbeat ("PING"/"PONG" text messages). The server sends "PING" after
 * `pingMs` without hearing from the client and terminates the socket if nothing arrives within
 * `pongWaitMs`; that is what finds connections whose peer vanished without a FIN.
 */
export interface WebSocketKeepAlive {
  enabled: boolean;
  /** Quiet time before the server pings, ms. tRPC's default is 30 000. */
  pingMs?: number;
  /** Time allowed for any reply after a ping, ms. tRPC's default is 5 000. */
  pongWaitMs?: number;
}

/**
 * Called for upgrade requests outside the tRPC path (e.g. Next.js HMR in a custom server).
 * Return true when the socket was taken over; otherwise it is destroyed.
 */
export type UpgradeHook = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

export interface WebSocketTransportOptions<TRouter extends AnyRouter> {
  server: Server;
  router: TRouter;
  createContext: CreateTetherContext<TRouter, NodeContextOptions>;
  /** Only upgrades to this path (e.g. "/trpc") reach tRPC. */
  path: string;
  /** Message size, batch size, send budget and in-flight calls per connection. */
  limits: TransportLimits;
  /** Cookie-carrying upgrades from other origins are refused with 403 before any WebSocket exists. */
  origins: OriginPolicy;
  keepAlive: WebSocketKeepAlive;
  onUpgrade?: UpgradeHook;
  onError: TransportErrorHandler;
  log: Logger;
}

export interface WebSocketTransport {
  connections(): number;
  slowConsumersTerminated(): number;
  /** Most unsent bytes any connection held right after a frame was handed to it, since start. */
  maxBufferedBytes(): number;
  /** Upgrades refused for a foreign `Origin` with a cookie, since start. */
  foreignOriginsRefused(): number;
  /** Asks every client to reconnect (tRPC's reconnect notification), e.g. before a deploy. */
  broadcastReconnect(): void;
  /** Refuses new upgrades, closes every client (terminating those that do not finish in `graceMs`). */
  close(graceMs: number): Promise<void>;
}

/** Serves tRPC over WebSocket on an existing http server's `upgrade` event. */
export function attachWebSocketTransport<TRouter extends AnyRouter>(
  options: WebSocketTransportOptions<TRouter>,
): WebSocketTransport {
  const { server, log } = options;
  // noServer: the http server owns the port and the `upgrade` event, so other paths can be
  // forwarded (Next.js HMR) instead of ws answering every upgrade on the port.
  const { limits } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxBodyBytes });
  let closing = false;
  let slowTerminated = 0;
  let maxBuffered = 0;
  let foreignRefused = 0;

  const createContext = (opts: CreateWSSContextFnOptions) =>
    options.createContext({
      runtime: "node",
      transport: "ws",
      req: opts.req,
      connectionParams: opts.info.connectionParams,
      info: opts.info,
    });

  // tRPC types `createContext` through a conditional on the router's context, which TypeScript
  // cannot resolve for a generic router; the function above has the adapter's exact signature.
  const handlerOptions = {
    wss,
    router: options.router,
    createContext,
    // No `maxBatchSize` here: tRPC would count subscriptions too; `wsConnection.ts` checks it.
    onError: ({ error, path, type }) => options.onError({ error, path, type, transport: "ws" }),
  } as WSSHandlerOptions<TRouter>;

  const events = {
    onOverBudget(bufferedBytes: number, frameBytes: number) {
      slowTerminated += 1;
      log.warn(
        { bufferedBytes, frameBytes, limitBytes: limits.maxBufferedBytesPerConnection },
        "terminating WebSocket client that stopped reading (slow consumer)",
      );
    },
    onBuffered(bufferedBytes: number) {
      if (bufferedBytes > maxBuffered) maxBuffered = bufferedBytes;
    },
  };
  wss.on("connection", (socket: WebSocket, req: IncomingMessage) =>
    serveConnection(socket, req, { handler: handlerOptions, limits, keepAlive: options.keepAlive, events }),
  );

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Without an error listener a reset during the handshake would crash the process.
    socket.on("error", () => socket.destroy());
    if (pathMatches(requestPathname(req), options.path)) {
      if (closing) {
        socket.destroy();
        return;
      }
      if (isForeignCookieRequest(nodeHeaders(req), options.origins)) {
        foreignRefused += 1;
        refuseForeignUpgrade(socket);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
      return;
    }
    if (options.onUpgrade?.(req, socket, head)) return;
    socket.destroy();
  };
  server.on("upgrade", onUpgrade);

  return {
    connections: () => wss.clients.size,
    slowConsumersTerminated: () => slowTerminated,
    maxBufferedBytes: () => maxBuffered,
    foreignOriginsRefused: () => foreignRefused,
    broadcastReconnect: () => {
      // tRPC's reconnect notification, as its `broadcastReconnectNotification` sends it.
      const notice = JSON.stringify({ id: null, method: "reconnect" });
      for (const client of wss.clients) if (client.readyState === client.OPEN) client.send(notice);
    },
    async close(graceMs) {
      closing = true;
      server.off("upgrade", onUpgrade);
      const clients = [...wss.clients];
      await Promise.all(clients.map((client) => closeClient(client, graceMs)));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** 1001 "going away" lets tRPC clients reconnect elsewhere; a client that never answers is cut. */
function closeClient(client: WebSocket, graceMs: number): Promise<void> {
  if (client.readyState === client.CLOSED) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => client.terminate(), graceMs);
    client.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    client.close(1001, "server shutting down");
  });
}
