import { QueryClient, type QueryKey } from "@tanstack/query-core";
import {
  createTRPCClient,
  createWSClient,
  getUntypedClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  wsLink,
  type HTTPBatchLinkOptions,
  type TRPCClient,
  type TRPCLink,
  type TRPCWebSocketClient,
} from "@trpc/client";
import type { AnyRouter, AnyTRPCClientTypes } from "@trpc/server";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { keepLiveValuesAuthoritative, liveHash, queryClientCache } from "./cache.ts";
import { commitLink, CommitTracker } from "./commits.ts";
import {
  ConnectionStatusStore,
  defaultEnvironment,
  watchEnvironment,
  type ConnectionState,
  type EnvironmentTarget,
} from "./connection.ts";
import { mismatchSafeDecoder, mismatchSafeSubscriptionLink, tetherTransformer, type DataTransformerOptions } from "./transformer.ts";

/** tRPC's behaviour without a transformer: values as they are. */
const IDENTITY_OUTPUT = { serialize: (value: unknown) => value, deserialize: (value: unknown) => value };
import { LiveQueryRegistry, type LiveHandlers, type LiveTransport, type WaitForCommitOptions } from "./live/index.ts";
import { LIVE_PROCEDURE, VIA_SOCKET, type LiveInput, type LiveMessage } from "@tether/protocol";
// Types only: the core loads neither (they are the options of what /crdt and /presence attach).
import type { CrdtSessionsOptions } from "../crdt/registry.ts";
import type { PresenceRegistryOptions } from "../presence/registry.ts";

/** Subscriptions over WebSocket (the default): one socket for every live query. */
export interface WebSocketSubscriptionOptions {
  transport?: "ws";
  /** Default: `url` with http(s) replaced by ws(s). */
  url?: string;
  /** For runtimes without a global WebSocket (Node 20: the `ws` package). */
  WebSocket?: typeof WebSocket;
  connectionParams?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** Client-side pings (tRPC's keepAlive); the server pings too. Default off. */
  keepAlive?: { enabled: boolean; intervalMs?: number; pongTimeoutMs?: number };
  /**
   * Close the socket this long after the last subscription ended, ms; `false` keeps it open from
   * the start. Default 5000 (connect on the first live query).
   */
  lazyCloseMs?: number | false;
}

/** Subscriptions over Server-Sent Events (`httpSubscriptionLink`): one stream per live query. */
export interface SseSubscriptionOptions {
  transport: "sse";
  /** Default: `url`. */
  url?: string;
  /** For runtimes without a global EventSource (Node 20: the `eventsource` package). */
  EventSource?: unknown;
  connectionParams?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  eventSourceOptions?: Record<string, unknown>;
}

/** The server's default `maxBatchSize` (@tether/server DEFAULT_TRANSPORT_LIMITS). */
const DEFAULT_MAX_BATCH_SIZE = 50;

export interface TetherClientOptions {
  /** The tRPC endpoint for HTTP (queries, mutations), e.g. "/trpc" or "http://localhost:3000/trpc". */
  url: string;
  /**
   * Headers of every HTTP batch request; a function gets the batch's operations (`opList`), so a
   * link of the app's (`links`) can put per-call values in `op.context` for it to send.
   */
  headers?: HTTPBatchLinkOptions<AnyTRPCClientTypes>["headers"];
  fetch?: typeof fetch;
  /**
   * Most calls batched into one HTTP request. Default 50: the server's default `maxBatchSize`
   * (a larger batch is refused whole with BAD_REQUEST), so a page firing more calls in one tick
   * sends several requests instead.
   */
  maxBatchSize?: number;
  subscriptions?: WebSocketSubscriptionOptions | SseSubscriptionOptions;
  /** The app's own QueryClient; default: a new one. */
  queryClient?: QueryClient;
  /** WebSocket reconnects and subscription retries. Default 250 ms doubling to 30 s, half jitter. */
  reconnect?: BackoffOptions;
  /** See LiveQueryRegistryOptions.unsubscribeDelayMs. Default 100 ms. */
  unsubscribeDelayMs?: number;
  /** Where online/offline and visibility events come from; default `window` when there is one. */
  environment?: EnvironmentTarget | null;
  /** CRDT sessions (`@tether/client/crdt`, `useCrdtDoc`): persistence, retries, pushes, release delay. */
  crdt?: CrdtSessionsOptions;
  /** Presence rooms (`@tether/client/presence`, `usePresence`): this tab's client id, retries, release delay. */
  presence?: PresenceRegistryOptions;
  /**
   * The router's data transformer (`superjson`, …): the one `initTether().create({ transformer })`
   * has, given to every link Tether builds (HTTP batch, WebSocket, SSE). Default: none (JSON).
   */
  transformer?: DataTransformerOptions;
  /**
   * The app's own tRPC links (`loggerLink`, a link that adds context or retries), run in this order
   * before Tether's, for every call and subscription. Tether's links end the chain (they send), so
   * these must forward each operation (`next(op)`), as tRPC's non-terminating links do.
   */
  links?: TRPCLink<AnyRouter>[];
}

/**
 * Something an entry point keeps once per client and makes on first use (`@tether/client/crdt`'s
 * sessions, `@tether/client/presence`'s rooms): the client holds it and closes it, the entry point
 * brings the code, so the core loads none of it.
 */
export interface ClientSlot<T> {
  /** What it holds, for errors. */
  readonly name: string;
  make(client: TetherClient<AnyRouter>, options: TetherClientOptions): T;
  /** Ends it when the client closes (before the live queries and the socket). */
  close(value: T): void | Promise<void>;
}

/** The framework-agnostic Tether client: tRPC client, query cache, live queries, connection. */
export interface TetherClient<TRouter extends AnyRouter> {
  /** The typed tRPC client (`trpc.tasks.add.mutate(...)`), for use outside React. */
  readonly trpc: TRPCClient<TRouter>;
  readonly queryClient: QueryClient;
  readonly live: LiveQueryRegistry;
  readonly connection: ConnectionStatusStore;
  readonly commits: CommitTracker;
  /**
   * Resolves when the live queries in use (or `options.queries`) reflect the given commits
   * (transaction ids from `x-tether-commit`, e.g. from `withCommits`).
   */
  waitForCommit(commits: string | readonly string[], options?: WaitForCommitOptions): Promise<void>;
  /** Runs `fn` (mutations) and returns its result with the commits its responses reported. */
  withCommits<T>(fn: () => Promise<T>): Promise<{ result: T; commits: string[] }>;
  /** Puts the server's live value back into the cache entry (e.g. to drop an optimistic value). */
  restoreServerValue(queryKey: QueryKey): void;
  /** Retry connections and subscriptions now instead of after the backoff. */
  reconnectNow(): void;
  /** The client's value of `slot`, made on first use (throws once the client is closing). */
  attach<T>(slot: ClientSlot<T>): T;
  /**
   * Runs `fn` when the client closes, before its subscriptions and socket end (CRDT sessions and
   * presence rooms made for this client register here). Returns an unregister function.
   */
  onClose(fn: () => void | Promise<void>): () => void;
  /** Ends the attached slots and what registered with `onClose`, then subscriptions, and closes the socket. */
  close(): Promise<void>;
}

function websocketUrl(httpUrl: string): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  const url = base ? new URL(httpUrl, base) : new URL(httpUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export function createTetherClient<TRouter extends AnyRouter>(options: TetherClientOptions): TetherClient<TRouter> {
  const queryClient = options.queryClient ?? new QueryClient();
  const environment = options.environment === undefined ? defaultEnvironment() : options.environment;
  const subscriptions = options.subscriptions ?? { transport: "ws" as const };
  const transportName = subscriptions.transport === "sse" ? "sse" : "ws";
  const connection = new ConnectionStatusStore(transportName, environment?.navigator?.onLine ?? true);
  const commits = new CommitTracker();
  const cleanups: Array<() => void> = [];

  // --- subscription link -------------------------------------------------------------------
  // Links are built for any router and typed at the end. With a transformer, every link gets it,
  // wrapped to restore live messages the server serialized once per result (transformer.ts).
  const transformer = options.transformer ? { transformer: tetherTransformer(options.transformer) } : {};
  let subscriptionLink: TRPCLink<AnyRouter>;
  let closeSocket: () => Promise<void> = async () => undefined;
  const socketBackoff = new Backoff(options.reconnect);
  if (subscriptions.transport === "sse") {
    const sse = subscriptions;
    // Error events this client's transformer cannot read are made readable (transformer.ts).
    subscriptionLink = mismatchSafeSubscriptionLink(
      httpSubscriptionLink<AnyRouter, typeof EventSource>({
        url: sse.url ?? options.url,
        EventSource: sse.EventSource as typeof EventSource | undefined,
        connectionParams: sse.connectionParams,
        eventSourceOptions: sse.eventSourceOptions,
        ...transformer,
      }),
    );
  } else {
    const ws = subscriptions;
    // Resolved when connecting: a relative `url` ("/trpc") needs the page's location, which
    // server rendering does not have (and never connects).
    const url = () => ws.url ?? websocketUrl(options.url);
    let everConnected = false;
    let failuresSinceOpen = 0;
    // Made on the first subscription, not here: server rendering creates clients too, and a
    // runtime without WebSocket (Node 20) must be able to, as long as nothing subscribes there.
    let wsClient: TRPCWebSocketClient | null = null;
    const socket = (): TRPCWebSocketClient => {
      if (wsClient) return wsClient;
      const made = createWSClient({
        // JSON frames, with error frames this client's transformer cannot read made readable (transformer.ts).
        experimental_encoder: {
          encode: (message) => JSON.stringify(message),
          decode: mismatchSafeDecoder(transformer.transformer?.output ?? IDENTITY_OUTPUT),
        },
        // tRPC sleeps `retryDelayMs` and cannot be woken; the wait lives in `url` instead, where
        // the Backoff can cut it short when the browser comes back online or the tab shows again.
        retryDelayMs: () => 0,
        url: async () => {
          if (failuresSinceOpen > 0) await socketBackoff.wait();
          failuresSinceOpen += 1;
          return url();
        },
        WebSocket: ws.WebSocket,
        connectionParams: ws.connectionParams,
        keepAlive: ws.keepAlive,
        lazy: ws.lazyCloseMs === false ? { enabled: false, closeMs: 0 } : { enabled: true, closeMs: ws.lazyCloseMs ?? 5000 },
        onOpen: () => {
          failuresSinceOpen = 0;
          socketBackoff.reset();
        },
      });
      const stateSubscription = made.connectionState.subscribe({
        next: (value) => {
          let state: ConnectionState;
          if (value.state === "pending") {
            everConnected = true;
            state = "connected";
          } else if (value.state === "idle") state = "idle";
          else state = everConnected ? "reconnecting" : "connecting";
          connection.update({ state, error: value.error ?? null });
        },
      });
      cleanups.push(() => stateSubscription.unsubscribe());
      wsClient = made;
      return made;
    };
    subscriptionLink = (runtime) => {
      let link: ReturnType<TRPCLink<AnyRouter>> | null = null;
      return (op) => (link ??= wsLink<AnyRouter>({ client: socket(), ...transformer })(runtime))(op);
    };
    closeSocket = async () => {
      await wsClient?.close();
    };
  }

  const links: TRPCLink<AnyRouter>[] = [
    ...(options.links ?? []),
    commitLink<AnyRouter>(commits),
    splitLink<AnyRouter>({
      // Subscriptions, and calls that asked for the socket when there is one (VIA_SOCKET).
      condition: (op) => op.type === "subscription" || (transportName === "ws" && op.context[VIA_SOCKET] === true),
      true: subscriptionLink,
      false: httpBatchLink<AnyRouter>({
        url: options.url,
        headers: options.headers,
        fetch: options.fetch,
        maxItems: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        ...transformer,
      }),
    }),
  ];
  const trpc = createTRPCClient<TRouter>({ links: links as TRPCLink<TRouter>[] });
  const untyped = getUntypedClient(trpc);

  const transport: LiveTransport = {
    subscribe(input: LiveInput, handlers: LiveHandlers) {
      return untyped.subscription(LIVE_PROCEDURE, input, {
        onData: (event) => handlers.onData(event as { id?: string; data: LiveMessage }),
        onError: (error) => handlers.onError(error),
        onComplete: () => handlers.onComplete(),
        onConnectionStateChange: (state) =>
          handlers.onConnectionStateChange?.({ state: state.state, error: state.error }),
      });
    },
  };

  const live = new LiveQueryRegistry({
    transport,
    cache: queryClientCache(queryClient),
    unsubscribeDelayMs: options.unsubscribeDelayMs,
    retry: options.reconnect,
  });
  cleanups.push(keepLiveValuesAuthoritative(queryClient, live));

  if (transportName === "sse") {
    // No shared socket: the connection is as good as the live queries' streams.
    const derive = () => {
      const states = live.all().map((q) => q.state.status);
      let state: ConnectionState = "idle";
      if (states.some((s) => s === "reconnecting" || s === "error")) state = "reconnecting";
      else if (states.some((s) => s === "connecting")) state = "connecting";
      else if (states.some((s) => s === "live")) state = "connected";
      connection.update({ state });
    };
    cleanups.push(live.subscribeAll(derive));
  }

  const reconnectNow = () => {
    socketBackoff.wake();
    live.wake();
  };
  cleanups.push(
    watchEnvironment(environment, {
      onWake: reconnectNow,
      onOnlineChange: (online) => connection.update({ online }),
    }),
  );

  let closed: Promise<void> | null = null;
  const closeHooks = new Set<() => void | Promise<void>>();
  const slots = new Map<ClientSlot<unknown>, unknown>();
  const client: TetherClient<TRouter> = {
    trpc,
    queryClient,
    live,
    connection,
    commits,
    waitForCommit: (xids, waitOptions = {}) => live.waitForCommit(xids, { ...waitOptions, hashOf: liveHash }),
    async withCommits(fn) {
      const capture = commits.capture();
      try {
        const result = await fn();
        return { result, commits: capture.commits() };
      } finally {
        capture.stop();
      }
    },
    restoreServerValue(queryKey) {
      live.get(liveHash(queryKey))?.restoreServerValue();
    },
    reconnectNow,
    attach<T>(slot: ClientSlot<T>): T {
      if (slots.has(slot)) return slots.get(slot) as T;
      if (closed) throw new Error(`${slot.name} of a closed client`);
      const made = slot.make(client as TetherClient<AnyRouter>, options);
      slots.set(slot, made);
      // Closing the client ends it (CRDT sessions write their persisted copies, rooms are left).
      closeHooks.add(() => slot.close(made));
      return made;
    },
    onClose(fn) {
      closeHooks.add(fn);
      return () => closeHooks.delete(fn);
    },
    close() {
      closed ??= (async () => {
        const hooks = [...closeHooks];
        closeHooks.clear();
        await Promise.allSettled(hooks.map(async (hook) => hook()));
        for (const cleanup of cleanups.splice(0)) cleanup();
        live.close();
        socketBackoff.close();
        await closeSocket();
      })();
      return closed;
    },
  };
  return client;
}
