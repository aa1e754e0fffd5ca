/**
 * Every limit of the transports (`createTetherServer`, `nextRouteHandler`), with its default. Each
 * prevents a named failure; override any of them with `limits: { ... }`.
 */
export interface TransportLimits {
  /**
   * Largest HTTP request body / WebSocket message, bytes. Larger ones get PAYLOAD_TOO_LARGE (HTTP
   * 413) / WebSocket close 1009. Inputs larger than this are not normal traffic, and `ws`'s own
   * default (100 MiB) would let one message take the heap.
   */
  maxBodyBytes: number;
  /**
   * Most calls in one HTTP batch, or queries and mutations in one WebSocket message array; larger
   * batches get BAD_REQUEST for every call, before any input is parsed. (Subscriptions in a WS
   * array do not count: tRPC's client re-sends every open subscription in one array when it
   * reconnects; they are capped by `limits.subscriptions`.) Without it one 14 KB GET batched 1,000 queries
   * into a 48 MB answer, and one POST ran 1,000 transactions at once and starved every other
   * user of database connections. On HTTP it is also the most calls of one request running at
   * once (tRPC runs a batch's calls concurrently).
   */
  maxBatchSize: number;
  /**
   * Unsent bytes one WebSocket may hold (all its subscriptions and replies together). Checked
   * before every frame is handed to the socket: a frame that would take the connection past it
   * terminates the connection instead (a client that stops reading). One frame bigger than the
   * whole budget is still let out when nothing else is waiting, so a large result is not refused
   * to a client that reads.
   */
  maxBufferedBytesPerConnection: number;
  /**
   * Queries and mutations one WebSocket connection runs at once. Further calls wait in arrival
   * order (subscriptions and stops queue behind them too, so order is kept) and the socket stops
   * being read until one finishes: TCP pushes back on the client instead of the server holding
   * thousands of calls. Subscriptions do not count (they are capped by `limits.subscriptions`).
   */
  maxInFlightCallsPerConnection: number;
  /**
   * Calls one WebSocket connection may have waiting behind `maxInFlightCallsPerConnection`.
   * Reading stops as soon as any call waits, so only what `ws` had already received gets here;
   * beyond it a call is answered TOO_MANY_REQUESTS.
   */
  maxQueuedCallsPerConnection: number;
  /**
   * How long an idle HTTP keep-alive connection stays open, ms. Node's default (5 s) is shorter
   * than the idle time of many clients and proxies, so the server closed sockets a client was just
   * reusing and that client's call failed with ECONNRESET (seen under load: a mutation lost). A
   * minute outlasts undici/fetch (which closes at the server's hint minus a margin) and load
   * balancers' usual 60 s, so the client is the side that closes.
   */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  maxBodyBytes: 1_000_000,
  maxBatchSize: 50,
  maxBufferedBytesPerConnection: 8 * 1024 * 1024,
  maxInFlightCallsPerConnection: 32,
  maxQueuedCallsPerConnection: 256,
  keepAliveTimeoutMs: 65_000,
};

/** The defaults with the caller's overrides. */
export function transportLimits(overrides: Partial<TransportLimits> = {}): TransportLimits {
  return { ...DEFAULT_TRANSPORT_LIMITS, ...definedOnly(overrides) };
}

function definedOnly<T extends object>(value: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
