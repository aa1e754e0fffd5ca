/**
 * Live subscribers of every kind a Tether app meets, each recording every value it ever held:
 * - `core-ws` / `core-sse`: `@tether/client`'s core (live-query registry → TanStack cache);
 * - `trpc-ws` / `trpc-sse`: a bare `@trpc/client` (wsLink with retry, httpSubscriptionLink)
 *   applying `$live` messages itself; their URL rotates over the nodes, so a dead node's clients
 *   move to another one.
 * The oracle (oracle.ts) checks what they saw.
 */
import { QueryClient } from "@tanstack/query-core";
import { createTRPCClient, createWSClient, httpSubscriptionLink, retryLink, wsLink, type TRPCClient, type TRPCLink } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import { EventSource } from "eventsource";
import { WebSocket } from "ws";
import { applyListPatch, createTetherClient, liveHash, LIVE_PROCEDURE, type LiveMessage } from "@tether/client";

export type SubscriberKind = "core-ws" | "core-sse" | "trpc-ws" | "trpc-sse";
export const SUBSCRIBER_KINDS: readonly SubscriberKind[] = ["core-ws", "core-sse", "trpc-ws", "trpc-sse"];

export type Row = Record<string, unknown> & { id: string; title: string };

export interface Endpoint {
  url: string;
  wsUrl: string;
}

export interface Subscriber {
  readonly name: string;
  readonly kind: SubscriberKind;
  /** The rows it shows now (undefined before the first value). */
  data(): Row[] | undefined;
  /** When each title first appeared in its data (ms since epoch). */
  readonly firstSeen: Map<string, number>;
  /** Every title it ever held, in any value. */
  readonly everSeen: Set<string>;
  /** Protocol violations seen (version gaps, unusable patches, errors it could not retry). */
  readonly faults: string[];
  /** Errors the server sent that the client retried (bare tRPC clients only). */
  readonly errors: string[];
  values: number;
  close(): Promise<void>;
}

const PATH = "tasks.byProject";

function recorder(name: string, kind: SubscriberKind) {
  let current: Row[] | undefined;
  const sub = {
    name,
    kind,
    firstSeen: new Map<string, number>(),
    everSeen: new Set<string>(),
    faults: [] as string[],
    errors: [] as string[],
    values: 0,
    data: () => current,
    close: async () => undefined,
  } satisfies Subscriber;
  const take = (rows: Row[] | undefined) => {
    current = rows;
    if (!rows) return;
    sub.values += 1;
    const now = Date.now();
    for (const row of rows) {
      if (!sub.firstSeen.has(row.title)) sub.firstSeen.set(row.title, now);
      sub.everSeen.add(row.title);
    }
  };
  return { sub, take };
}

/** A `@tether/client` core client holding `tasks.byProject({ projectId })` live. */
function coreSubscriber(name: string, kind: "core-ws" | "core-sse", node: Endpoint, projectId: string): Subscriber {
  const { sub, take } = recorder(name, kind);
  const client = createTetherClient<AnyRouter>({
    url: `${node.url}/trpc`,
    subscriptions:
      kind === "core-sse"
        ? { transport: "sse", EventSource }
        : { transport: "ws", url: node.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, lazyCloseMs: false },
    reconnect: { initialDelayMs: 20, maxDelayMs: 500 },
    queryClient: new QueryClient({ defaultOptions: { queries: { retry: false } } }),
    environment: null,
  });
  const queryKey = [PATH.split("."), { input: { projectId }, type: "query" }];
  // Every value the cache entry ever held (the client writes each applied message there).
  const unwatch = client.queryClient.getQueryCache().subscribe((event) => {
    if (event.query.queryHash === liveHash(queryKey) && event.type === "updated") take(event.query.state.data as Row[] | undefined);
  });
  const held = client.live.acquire({ path: PATH, input: { projectId }, queryKey, hash: liveHash(queryKey) });
  sub.close = async () => {
    held.release();
    unwatch();
    await client.close();
  };
  return sub;
}

/** A bare tRPC client on `$live`, applying full/patch/resumed itself; rotates over `nodes`. */
function trpcSubscriber(name: string, kind: "trpc-ws" | "trpc-sse", nodes: () => Endpoint[], first: number, projectId: string): Subscriber {
  const { sub, take } = recorder(name, kind);
  let turn = first;
  // Each (re)connection asks for the next node: a dead one's clients land on another.
  const next = () => nodes()[turn++ % nodes().length]!;
  let closeSocket = async () => undefined as unknown;
  let link: TRPCLink<AnyRouter>;
  if (kind === "trpc-ws") {
    const ws = createWSClient({
      url: () => next().wsUrl,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      retryDelayMs: (attempt) => Math.min(20 * 2 ** attempt, 500),
    });
    closeSocket = () => ws.close();
    link = wsLink({ client: ws });
  } else {
    link = httpSubscriptionLink({ url: () => `${next().url}/trpc`, EventSource });
  }
  // tRPC's own retryLink: a server-side error ends a subscription; this resubscribes (with the
  // last tracked id, so the server can answer "resumed"). A caller's mistake (4xx) is not retried.
  const retry = retryLink<AnyRouter>({
    retry: ({ error }) => {
      sub.errors.push(`${error.data?.code ?? "no code"}: ${error.message}`);
      return !(error.data?.httpStatus && error.data.httpStatus < 500);
    },
    retryDelayMs: (attempt) => Math.min(20 * 2 ** attempt, 500),
  });
  const trpc = createTRPCClient<AnyRouter>({ links: [retry, link] }) as unknown as TRPCClient<AnyRouter> & {
    [LIVE_PROCEDURE]: { subscribe: (input: unknown, handlers: object) => { unsubscribe(): void } };
  };
  let version = 0;
  let rows: Row[] | undefined;
  const subscription = trpc[LIVE_PROCEDURE].subscribe(
    { path: PATH, input: { projectId } },
    {
      onData: (event: { id: string; data: LiveMessage }) => {
        const message = event.data;
        if (message.kind === "full") rows = message.data as Row[];
        else if (message.kind === "patch") {
          if (message.version !== version + 1 || !rows) {
            sub.faults.push(`version gap: had ${version}, got patch ${message.version}`);
            return;
          }
          try {
            rows = applyListPatch(rows, message.patch) as Row[];
          } catch (error) {
            sub.faults.push(`unusable patch: ${(error as Error).message}`);
            return;
          }
        }
        version = message.version;
        take(rows);
      },
      onError: (error: unknown) => sub.faults.push(`stream ended by an error it could not retry: ${String(error)}`),
    },
  );
  sub.close = async () => {
    subscription.unsubscribe();
    await closeSocket();
  };
  return sub;
}

/** `count` subscribers cycling through the kinds and spread over the nodes. */
export function startSubscribers(
  nodes: () => Endpoint[],
  projectId: string,
  count: number,
  kinds: readonly SubscriberKind[] = SUBSCRIBER_KINDS,
): Subscriber[] {
  const made: Subscriber[] = [];
  for (let i = 0; i < count; i += 1) {
    const kind = kinds[i % kinds.length]!;
    const node = nodes()[i % nodes().length]!;
    const name = `${kind}#${i}`;
    made.push(
      kind === "core-ws" || kind === "core-sse"
        ? coreSubscriber(name, kind, node, projectId)
        : trpcSubscriber(name, kind, nodes, i, projectId),
    );
  }
  return made;
}
