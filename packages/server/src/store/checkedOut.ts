import type pg from "pg";

/**
 * Runs `fn` with a client checked out of `pool`, and releases it after (destroyed when `destroy`
 * says so). pg-pool removes its own 'error' listener while a client is checked out, and a pg
 * client whose connection ends emits 'error' even when a query is running (the query also fails
 * with it): without a listener of ours that event is unhandled and kills the process — seen when
 * Postgres was restarted under load (fault suite). The query's own rejection carries the error.
 */
export async function withCheckedOut<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  destroy: () => boolean = () => false,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  const onError = () => (broken = true);
  client.on("error", onError);
  try {
    return await fn(client);
  } finally {
    client.off("error", onError);
    // A client whose connection failed is destroyed, never handed to the next caller.
    client.release(broken || destroy());
  }
}
