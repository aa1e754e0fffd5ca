import type { PGlite, Transaction } from "@electric-sql/pglite";
import type { Listening, NotificationHandlers, SqlClient, SqlConnection } from "./sqlClient.ts";

function connectionOf(db: PGlite | Transaction): SqlConnection {
  return {
    async query<Row>(sql: string, params?: readonly unknown[]) {
      const result = await db.query<Row>(sql, params ? [...params] : undefined);
      return result.rows;
    },
    async exec(script: string) {
      await db.exec(script);
    },
  };
}

/**
 * PGlite is one connection in one process: queries are serialized by PGlite itself, so a
 * "dedicated connection" is the instance, and LISTEN never drops.
 */
export function pgliteClient(pg: PGlite, options: { closeOnEnd: boolean }): SqlClient {
  const base = connectionOf(pg);
  return {
    engine: "pglite",
    ...base,
    transaction: (fn) => pg.transaction((tx) => fn(connectionOf(tx))),
    withConnection: (fn) => fn(base),
    async listen(channel: string, handlers: NotificationHandlers): Promise<Listening> {
      const unlisten = await pg.listen(channel, handlers.onNotify);
      handlers.onConnect?.();
      return { close: () => unlisten() };
    },
    async close() {
      if (options.closeOnEnd && !pg.closed) await pg.close();
    },
  };
}
