// Shared by the React client tests: a real Tether server (HTTP + WS + SSE) on the demo app, and
// the React bindings typed for its router.
import type { ReactNode } from "react";
import { render } from "@testing-library/react";
import { QueryClient } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { EventSource } from "eventsource";
import { WebSocket } from "ws";
import type { ReactorConfig } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import type { TetherClient, TetherClientOptions } from "@tether/client";
import { createTetherReact } from "@tether/client/react";
import { buildApp, type TestRouter } from "../fixtures/app.ts";
import type { AppStore } from "../support/databases.ts";

export const tether = createTetherReact<TestRouter>();

export interface RunningServer {
  app: ReturnType<typeof buildApp>;
  server: TetherServer;
  port: number;
  /** Transport first (clients see the socket close), then the reactor and its feed. */
  stop(): Promise<void>;
}

/** A Tether server for `store` (Alice is signed in on every connection). */
export async function startServer(
  store: AppStore,
  options: { port?: number; reactor?: Partial<ReactorConfig> } = {},
): Promise<RunningServer> {
  const app = buildApp(store, options.reactor);
  const server = await createTetherServer({
    router: app.router,
    createContext: () => ({ user: { id: "alice" } }),
    port: options.port ?? 0,
    closeGraceMs: 200,
  });
  let stopped: Promise<void> | undefined;
  return {
    app,
    server,
    port: server.port,
    stop: () =>
      (stopped ??= (async () => {
        await server.close();
        await app.tether.close();
      })()),
  };
}

/** A Tether client for a server (WebSocket subscriptions unless told otherwise), fast retries. */
export function clientFor(
  server: TetherServer,
  options: Partial<TetherClientOptions> & { sse?: boolean; WebSocket?: typeof WebSocket } = {},
): TetherClient<TestRouter> {
  const { sse, WebSocket: WS, ...rest } = options;
  return tether.createClient({
    url: `${server.url}/trpc`,
    subscriptions: sse
      ? { transport: "sse", EventSource }
      : { transport: "ws", url: server.wsUrl, WebSocket: (WS ?? WebSocket) as unknown as typeof globalThis.WebSocket },
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    queryClient: new QueryClient({ defaultOptions: { queries: { retry: false } } }),
    ...rest,
  });
}

/** A second, plain tRPC client: another user's browser, as far as the first one can tell. */
export function otherClient(server: TetherServer) {
  return createTRPCClient<TestRouter>({ links: [httpBatchLink({ url: `${server.url}/trpc` })] });
}

export function renderWith(client: TetherClient<TestRouter>, ui: ReactNode) {
  return render(<tether.TetherProvider client={client}>{ui}</tether.TetherProvider>);
}
