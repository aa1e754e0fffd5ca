import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { AnyRouter } from "@trpc/server";
import { applyWSSHandler, type CreateWSSContextFnOptions, type WSSHandlerOptions } from "@trpc/server/adapters/ws";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "../log/index.ts";
import type { CreateTetherContext, NodeContextOptions, TransportErrorHandler } from "./contextOptions.ts";
import { pathMatches, requestPathname } from "./paths.ts";
import { watchSlowConsumers } from "./slowConsumers.ts";

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
  /** Largest incoming message; ws's own default (100 MiB) is far too generous. */
  maxMessageBytes: number;
  slowConsumerBytes: number;
  slowConsumerCheckMs: number;
  keepAlive: WebSocketKeepAlive;
  onUpgrade?: UpgradeHook;
  onError: TransportErrorHandler;
  log: Logger;
}

export interface WebSocketTransport {
  connections(): number;
  slowConsumersTerminated(): number;
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
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes });
  let closing = false;
  let slowTerminated = 0;

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
    keepAlive: options.keepAlive,
    onError: ({ error, path, type }) => options.onError({ error, path, type, transport: "ws" }),
  } as WSSHandlerOptions<TRouter>;
  const handler = applyWSSHandler<TRouter>(handlerOptions);

  const stopWatch = watchSlowConsumers({
    clients: wss.clients,
    limitBytes: options.slowConsumerBytes,
    intervalMs: options.slowConsumerCheckMs,
    onSlow: (_socket: WebSocket, bufferedBytes: number) => {
      slowTerminated += 1;
      log.warn(
        { bufferedBytes, limitBytes: options.slowConsumerBytes },
        "terminating WebSocket client that stopped reading (slow consumer)",
      );
    },
  });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Without an error listener a reset during the handshake would crash the process.
    socket.on("error", () => socket.destroy());
    if (pathMatches(requestPathname(req), options.path)) {
      if (closing) {
        socket.destroy();
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
    broadcastReconnect: () => handler.broadcastReconnectNotification(),
    async close(graceMs) {
      closing = true;
      stopWatch();
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
