import type pg from "pg";
import type { Logger } from "../log/index.ts";

/**
 * A checked-out client whose connection the server ends (a restart, `pg_terminate_backend`) is
 * of no use to its holder any more: pg emits 'error' on it — unhandled, that kills the process,
 * since pg-pool listens only to idle clients — and its holder may never give it back (Prisma's
 * adapter-pg does not release an interactive transaction's client whose ROLLBACK failed), which
 * leaks a pool slot per lost connection and makes `pool.end()` wait forever. So every client gets
 * a listener that releases it, destroyed, the moment its connection is lost while checked out,
 * and `release` becomes idempotent (the holder's later release is a no-op).
 */
export function releaseLostClients(pool: pg.Pool, log: Logger): void {
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => Promise<pg.PoolClient> | void;
  pool.connect = (async (...args: unknown[]) => {
    if (args.length > 0) return connect(...args); // callback style: not ours, nor Prisma's
    const client = (await connect()) as pg.PoolClient;
    const release = client.release.bind(client);
    let released = false;
    const onError = (error: Error) => {
      log.warn({ err: error.message }, "Postgres connection lost while checked out; released");
      client.release(error);
    };
    client.release = (error?: Error | boolean) => {
      if (released) return;
      released = true;
      client.off("error", onError);
      release(error);
    };
    client.on("error", onError);
    return client;
  }) as typeof pool.connect;
}

/**
 * Runs `fn` with a client checked out of `pool`, and releases it after (destroyed when `destroy`
 * says so). The pool must be one `releaseLostClients` watches: a client whose connection dies
 * meanwhile is released (destroyed) there, and the release here is then a no-op.
 */
export async function withCheckedOut<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  destroy: () => boolean = () => false,
): Promise<T> {
  const client = await pool.connect();
  try {
    return await fn(client);
  } finally {
    client.release(destroy());
  }
}
