// Test callers say who they are: `connectionParams.user` on the WebSocket, the `x-user` header on
// HTTP. The server side reads it back with `userFromRequest`; `connectAs` is such a caller.
import { createTRPCClient, createWSClient, httpBatchLink, httpSubscriptionLink, splitLink, wsLink, type TRPCClient, type TRPCLink } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import { EventSource } from "eventsource";
import { WebSocket } from "ws";
import { readHeader, type TetherContextOptions } from "@tether/server";
import type { TetherServer } from "@tether/server/adapters/node";

/** A `createContext` for test servers: the user the caller names, or anonymous. */
export function userFromRequest(opts: TetherContextOptions): { user: { id: string } | null } {
  const id = opts.connectionParams?.user ?? readHeader(opts, "x-user");
  return { user: id ? { id } : null };
}

/**
 * A client as `user`: subscriptions over its own WebSocket (or over SSE: `subscriptions: "sse"`),
 * queries and mutations batched over HTTP.
 */
export function connectAs<TRouter extends AnyRouter>(
  server: TetherServer,
  user: string,
  cleanups: Array<() => unknown>,
  { subscriptions = "ws" }: { subscriptions?: "ws" | "sse" } = {},
): { trpc: TRPCClient<TRouter>; closeSocket(): void } {
  let subscriptionLink: TRPCLink<AnyRouter>;
  let closeSocket = () => undefined as void;
  if (subscriptions === "sse") {
    subscriptionLink = httpSubscriptionLink({ url: `${server.url}/trpc`, EventSource, connectionParams: { user } });
  } else {
    const wsClient = createWSClient({
      url: server.wsUrl,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: { user },
      retryDelayMs: () => 20,
    });
    closeSocket = () => void wsClient.close();
    cleanups.push(closeSocket);
    subscriptionLink = wsLink({ client: wsClient });
  }
  // Built for any router (Tether routers use no transformer), typed at the end.
  const link: TRPCLink<AnyRouter> = splitLink({
    condition: (op) => op.type === "subscription",
    true: subscriptionLink,
    false: httpBatchLink({ url: `${server.url}/trpc`, headers: { "x-user": user } }),
  });
  const trpc = createTRPCClient<TRouter>({ links: [link as TRPCLink<TRouter>] });
  return { trpc, closeSocket };
}
