import type { IncomingMessage } from "node:http";
import { getErrorShape, TRPCError, transformTRPCResponse, type AnyRouter, type TRPC_ERROR_CODE_KEY } from "@trpc/server";
import { getWSConnectionHandler, handleKeepAlive, type Encoder, type WSSHandlerOptions } from "@trpc/server/adapters/ws";
import type { RawData, WebSocket } from "ws";
import { decodeFrame, encodeFrame, SHARED_PAYLOAD_PATHS } from "./frames.ts";
import type { TransportLimits } from "./limits.ts";
import type { WebSocketKeepAlive } from "./websocket.ts";

/** What one connection reports to the transport's counters. */
export interface ConnectionEvents {
  /** The connection was cut for not reading: `bufferedBytes` unsent, a `frameBytes` frame waiting. */
  onOverBudget(bufferedBytes: number, frameBytes: number): void;
  /** Unsent bytes right after a frame was handed to the socket. */
  onBuffered(bufferedBytes: number): void;
}

export interface ServeConnectionOptions<TRouter extends AnyRouter> {
  /** tRPC's handler options (router, createContext, onError); encoder and keep-alive are set here. */
  handler: WSSHandlerOptions<TRouter>;
  limits: TransportLimits;
  keepAlive: WebSocketKeepAlive;
  events: ConnectionEvents;
}

type CallId = string | number;
type Method = "query" | "mutation" | "subscription" | "subscription.stop";

/** One call as the client sent it (already parsed once, handed to tRPC without parsing again). */
interface IncomingCall {
  id: CallId | null;
  jsonrpc?: "2.0";
  method: Method;
  path?: string;
  raw: unknown;
}

/** Stands for "the call in `handoff`" when a queued call is given to tRPC; never valid JSON. */
const HANDOFF = "\u0000tether:handoff";
const HANDOFF_BUFFER = Buffer.from(HANDOFF);

/**
 * Serves tRPC on one WebSocket with the per-connection bounds tRPC's adapter does not have:
 *
 * - **Send budget.** Every frame goes through `send`, which first checks the socket's unsent bytes:
 *   a frame that would take them past `maxBufferedBytesPerConnection` terminates the connection
 *   instead of being queued. tRPC sends each subscription event without waiting for the peer, so
 *   a polling watchdog sees the buffer only between bursts: 1,000 subscriptions on a 384 KB result
 *   queued 371 MiB between two 100 ms checks. Checked at send time, the bound holds for any burst.
 * - **Serialize once** (`frames.ts`): identical live results become JSON once per connection burst,
 *   not once per subscription.
 * - **In-flight cap.** At most `maxInFlightCallsPerConnection` queries/mutations run at once; later
 *   calls wait in arrival order and the socket is paused (TCP pushes back on the client) until one
 *   finishes. Without it, 10,000 queries on one socket all started at once.
 *
 * tRPC's own connection handler does the rest (context, procedures, subscriptions, errors); this
 * module sits between it and the socket: its `message` listeners receive the calls this gate
 * releases, and its encoder is this connection's.
 */
export function serveConnection<TRouter extends AnyRouter>(
  socket: WebSocket,
  req: IncomingMessage,
  options: ServeConnectionOptions<TRouter>,
): void {
  const { limits, events } = options;
  const config = options.handler.router._def._config;

  /** Queries and mutations sent to tRPC and not yet answered, by id (ids are the client's). */
  const running = new Set<CallId>();
  /** Open subscriptions, by id, with their path. */
  const subscriptions = new Map<CallId, string>();
  const waiting: IncomingCall[] = [];
  let handoff: IncomingCall | undefined;
  let paused = false;
  /** The first message is the connection params when the client announced them: tRPC's own. */
  let paramsPending = new URL(req.url ?? "/", "http://localhost").searchParams.get("connectionParams") === "1";

  const encoder: Encoder = {
    encode(message) {
      noteOutgoing(message);
      const id = (message as { id?: unknown }).id;
      const path = typeof id === "string" || typeof id === "number" ? subscriptions.get(id) : undefined;
      return Buffer.from(encodeFrame(message, path !== undefined && SHARED_PAYLOAD_PATHS.has(path)));
    },
    decode(data) {
      if (handoff !== undefined && data === HANDOFF) return handoff.raw;
      return decodeFrame(data);
    },
  };

  guardSends(socket, limits.maxBufferedBytesPerConnection, events);

  // tRPC attaches its `message` listener here; it is moved behind the gate just below. Keep-alive
  // is attached after, directly: it must hear every message as it arrives, queued or not.
  getWSConnectionHandler({ ...options.handler, keepAlive: { enabled: false }, experimental_encoder: encoder })(socket, req);
  const trpcListeners = socket.listeners("message") as Array<(data: RawData, isBinary: boolean) => void>;
  socket.removeAllListeners("message");
  socket.on("message", onMessage);
  if (options.keepAlive.enabled) handleKeepAlive(socket, options.keepAlive.pingMs, options.keepAlive.pongWaitMs);
  socket.once("close", () => {
    waiting.length = 0;
  });

  function forward(data: RawData, isBinary: boolean): void {
    for (const listener of trpcListeners) listener.call(socket, data, isBinary);
  }

  function onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary || !Buffer.isBuffer(data)) return forward(data, isBinary);
    const text = data.toString("utf8");
    if (text === "PING" || text === "PONG") return forward(data, isBinary);
    if (paramsPending) {
      paramsPending = false;
      return forward(data, isBinary);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return forward(data, isBinary); // tRPC answers PARSE_ERROR
    }
    const batch = Array.isArray(parsed) ? parsed : [parsed];
    if (!batch.every(isCallShape)) return forward(data, isBinary); // tRPC's own PARSE_ERROR answers
    const calls = batch.map(toCall);
    // Only queries and mutations count against the batch size: tRPC's client sends every request
    // of a tick in one array, and on reconnect every open subscription at once, which must not fail
    // for an app with more than `maxBatchSize` live queries (those are capped per connection/user).
    if (calls.filter(isCounted).length > limits.maxBatchSize) {
      for (const call of calls) if (call.method !== "subscription.stop") reply(call, "BAD_REQUEST", "Batch call exceeds maximum size");
      return;
    }
    // One at a time, so calls that can start at once do not count against the waiting room.
    for (const call of calls) {
      admit(call);
      pump();
    }
  }

  function admit(call: IncomingCall): void {
    // A stop only frees resources: never refused, or a subscription would outlive its client.
    if (call.method !== "subscription.stop" && waiting.length >= limits.maxQueuedCallsPerConnection) {
      reply(call, "TOO_MANY_REQUESTS", "Too many calls waiting on this connection");
      return;
    }
    waiting.push(call);
  }

  /** Hands waiting calls to tRPC in order while the cap allows; reading stops while any wait. */
  function pump(): void {
    while (waiting.length > 0 && socket.readyState === socket.OPEN) {
      const call = waiting[0]!;
      if (isCounted(call) && running.size >= limits.maxInFlightCallsPerConnection) break;
      waiting.shift();
      dispatch(call);
    }
    const shouldPause = waiting.length > 0;
    if (shouldPause !== paused && socket.readyState === socket.OPEN) {
      paused = shouldPause;
      if (paused) socket.pause();
      else socket.resume();
    }
  }

  function dispatch(call: IncomingCall): void {
    if (call.method !== "subscription.stop" && call.id !== null) {
      // Ids tell answers apart; a second call under an id still in use would blur the accounting.
      if (running.has(call.id) || subscriptions.has(call.id)) {
        reply(call, "BAD_REQUEST", `Duplicate id ${String(call.id)}`);
        return;
      }
      if (call.method === "subscription") subscriptions.set(call.id, call.path ?? "");
      else running.add(call.id);
    }
    handoff = call;
    try {
      forward(HANDOFF_BUFFER, false);
    } finally {
      handoff = undefined;
    }
  }

  /** Every answer passes here: a query's reply frees its slot; `stopped` or an error ends a subscription. */
  function noteOutgoing(message: unknown): void {
    const { id, error, result } = message as { id?: unknown; error?: unknown; result?: { type?: unknown } };
    if (typeof id !== "string" && typeof id !== "number") return;
    if (running.has(id) && (error !== undefined || result?.type === "data")) {
      running.delete(id);
      // Not from inside tRPC's send: the released call must not answer before this frame goes out.
      queueMicrotask(pump);
    } else if (subscriptions.has(id) && (error !== undefined || result?.type === "stopped")) {
      subscriptions.delete(id);
    }
  }

  function reply(call: IncomingCall, code: TRPC_ERROR_CODE_KEY, message: string): void {
    if (call.id === null || socket.readyState !== socket.OPEN) return;
    const error = new TRPCError({ code, message });
    const shape = getErrorShape({ config, error, type: "unknown", path: call.path, input: undefined, ctx: undefined });
    const response = transformTRPCResponse(config, { id: call.id, jsonrpc: call.jsonrpc, error: shape });
    // Not through `encoder`: this answer must not count as the reply of a call under the same id.
    socket.send(Buffer.from(encodeFrame(response, false)));
  }
}

/** Queries and mutations: the calls that run to an answer and hold a slot meanwhile. */
function isCounted(call: IncomingCall): boolean {
  return call.method === "query" || call.method === "mutation";
}

function isCallShape(raw: unknown): boolean {
  if (typeof raw !== "object" || raw === null) return false;
  const { id, method } = raw as { id?: unknown; method?: unknown };
  return (
    (id === null || typeof id === "string" || typeof id === "number") &&
    (method === "query" || method === "mutation" || method === "subscription" || method === "subscription.stop")
  );
}

function toCall(raw: unknown): IncomingCall {
  const { id, jsonrpc, method, params } = raw as {
    id: CallId | null;
    jsonrpc?: unknown;
    method: Method;
    params?: { path?: unknown };
  };
  return {
    id,
    jsonrpc: jsonrpc === "2.0" ? "2.0" : undefined,
    method,
    path: typeof params?.path === "string" ? params.path : undefined,
    raw,
  };
}

/**
 * Wraps the socket's `send`: every frame (tRPC's replies and events, pings, reconnect notices) is
 * checked against the connection's budget before it is queued, and the encoder's buffers go out as
 * text frames (tRPC's client reads JSON from text frames only).
 *
 * A frame that does not fit terminates the connection (`terminate()`, not `close()`: a close frame
 * would queue behind the very bytes the client is not reading). A frame bigger than the whole
 * budget is let out when nothing else is waiting, so a reading client still gets a large result.
 */
function guardSends(socket: WebSocket, budget: number, events: ConnectionEvents): void {
  const send = socket.send.bind(socket);
  const guarded = (data: unknown, optionsOrCallback?: unknown, callback?: unknown): void => {
    if (socket.readyState !== socket.OPEN) return;
    const frameBytes =
      typeof data === "string" ? Buffer.byteLength(data) : ArrayBuffer.isView(data) ? data.byteLength : 0;
    const buffered = socket.bufferedAmount;
    if (buffered > 0 && buffered + frameBytes > budget) {
      events.onOverBudget(buffered, frameBytes);
      socket.terminate();
      return;
    }
    if (optionsOrCallback !== undefined || callback !== undefined) {
      (send as (...args: unknown[]) => void)(data, optionsOrCallback, callback);
    } else if (typeof data === "string") {
      send(data);
    } else {
      send(data as Buffer, { binary: false });
    }
    events.onBuffered(socket.bufferedAmount);
  };
  socket.send = guarded as WebSocket["send"];
}
