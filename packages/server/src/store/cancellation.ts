import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import type { Logger } from "../log/index.ts";
import { createMultiplexer, isMultiplexed, multiplexable } from "./multiplex.ts";

/**
 * Cancelling the SQL of an abandoned call. The caller (the reactor, for a live execution that
 * timed out) runs the call under `withQuerySignal(signal, fn)`; every statement the app's Prisma
 * client sends from inside fn carries that signal through this AsyncLocalStorage, down to the
 * driver, without the app's code passing anything.
 *
 * - Postgres: the statement runs on a pool connection held for it (`cancellableQueries`); when the
 *   signal aborts, `pg_cancel_backend(pid)` of that connection is sent from a short-lived
 *   connection of its own (the pool may be exhausted by the very queries being cancelled), and the
 *   connection is discarded afterwards instead of returned to the pool, so a late cancel can never
 *   hit the next statement on it. Statements not yet started (waiting for a connection) fail at
 *   once when they get one.
 * - PGlite: one connection, one statement at a time, in process: a running statement cannot be
 *   interrupted (nor one already handed to PGlite, queued behind a long transaction). Live
 *   statements take turns in a gate of ours before PGlite (pgliteAdapter.ts): one waiting there is
 *   withdrawn when its call is abandoned, and statements the call has not issued yet fail at once
 *   (`throwIfQueryAborted`), so an abandoned call stops at its current statement.
 * Interactive transactions (Prisma's `startTransaction`) are not cancelled this way.
 */
const currentSignal = new AsyncLocalStorage<AbortSignal>();

/** Runs fn with `signal` attached to every statement it sends (see above). */
export function withQuerySignal<T>(signal: AbortSignal, fn: () => T): T {
  return currentSignal.run(signal, fn);
}

/** The signal of the call in progress, if it is cancellable. */
export function querySignal(): AbortSignal | undefined {
  return currentSignal.getStore();
}

/** Told when a cancellable call's statements start and stop waiting for a connection. */
export interface QueryWaitWatcher {
  waiting(): void;
  acquired(): void;
}

const waitWatchers = new WeakMap<AbortSignal, QueryWaitWatcher>();

/**
 * Reports the connection waits of statements run under `signal` (withQuerySignal) to `watcher`:
 * the reactor excludes them from a live execution's timeout (queueing is not query time).
 */
export function watchQueryWaits(signal: AbortSignal, watcher: QueryWaitWatcher): void {
  waitWatchers.set(signal, watcher);
}

/** Runs `acquire` (getting a connection) as a reported wait of the current call. */
export async function reportedWait<T>(acquire: () => Promise<T>): Promise<T> {
  const signal = currentSignal.getStore();
  const watcher = signal ? waitWatchers.get(signal) : undefined;
  watcher?.waiting();
  try {
    return await acquire();
  } finally {
    watcher?.acquired();
  }
}

/** Thrown for a statement of an aborted call; carries Postgres' SQLSTATE for a cancelled query. */
export class QueryCancelledError extends Error {
  override readonly name = "QueryCancelledError";
  readonly code = "57014";
}

export function throwIfQueryAborted(): void {
  const signal = currentSignal.getStore();
  if (signal?.aborted) throw new QueryCancelledError("canceling statement due to user request (call abandoned)");
}

/** What pg's connections expose and its typings omit: the backend's process id. */
type PooledClient = pg.PoolClient & { processID?: number | null };

/** Application name of the short-lived connections that send cancels (visible in pg_stat_activity). */
export const CANCELLER_APPLICATION_NAME = "tether-canceller";

/**
 * Makes `pool.query` cancellable for calls under withQuerySignal (others are untouched): this is
 * the method Prisma's adapter-pg sends every non-transactional statement through.
 */
export function cancellableQueries(pool: pg.Pool, connectionString: string, log: Logger): pg.Pool {
  const plainQuery = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  const cancelBackend = async (pid: number): Promise<void> => {
    const client = new pg.Client({ connectionString, application_name: CANCELLER_APPLICATION_NAME });
    client.on("error", () => undefined); // the database going away mid-cancel: connect/query reject
    try {
      await client.connect();
      await client.query("SELECT pg_cancel_backend($1)", [pid]);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const query = async (args: unknown[], signal: AbortSignal): Promise<unknown> => {
    throwIfQueryAborted();
    // A client whose connection dies while checked out is released (destroyed) by the pool's
    // releaseLostClients; the release below is then a no-op.
    const client = (await reportedWait(() => pool.connect())) as PooledClient;
    const release = (destroy: boolean) => client.release(destroy);
    if (signal.aborted) {
      release(false);
      throwIfQueryAborted();
    }
    let cancelling: Promise<void> | null = null;
    const onAbort = () => {
      const pid = client.processID;
      if (typeof pid !== "number") return;
      cancelling = cancelBackend(pid).catch((error: unknown) => {
        log.warn({ err: (error as Error).message, pid }, "could not cancel an abandoned query");
      });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await (client.query as (...a: unknown[]) => Promise<unknown>)(...args);
    } finally {
      signal.removeEventListener("abort", onAbort);
      if (cancelling) {
        await cancelling;
        release(true); // discarded: never reused after a cancel was aimed at it
      } else {
        release(false);
      }
    }
  };
  // Reads of live executions that opted in (the reactor's) may share one statement (multiplex.ts).
  const multiplexer = createMultiplexer(query, withQuerySignal, (merged, members) => {
    waitWatchers.set(merged, {
      waiting: () => members.forEach((m) => waitWatchers.get(m)?.waiting()),
      acquired: () => members.forEach((m) => waitWatchers.get(m)?.acquired()),
    });
  });
  pool.query = ((...args: unknown[]) => {
    const signal = currentSignal.getStore();
    // Callback-style calls are not Prisma's; leave them (and calls outside a live run) as they are.
    if (!signal || typeof args[args.length - 1] === "function") return plainQuery(...args);
    const statement = isMultiplexed(signal) ? multiplexable(args) : null;
    return statement ? multiplexer.enqueue(statement, signal) : query(args, signal);
  }) as typeof pool.query;
  return pool;
}
