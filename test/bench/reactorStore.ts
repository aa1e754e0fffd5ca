/**
 * Stores for the reactor bench: a fresh migrated database (test/support/databases.ts) whose
 * Prisma driver adapter counts every SQL statement it sends, and a counting wrapper of the raw
 * SQL client for the change feed. This is what "DB queries" means in the reactor bench rows:
 * - `statements`: every statement Prisma sent through its driver adapter (queryRaw/executeRaw on
 *   the pool and inside transactions), plus one per transaction for the BEGIN the adapter issues
 *   itself, and one for its COMMIT/ROLLBACK (sent through executeRaw on Postgres; PGlite's adapter
 *   runs it itself).
 * - `reads`: the subset that are SELECTs of app data (Tether's own
 *   `pg_current_xact_id_if_assigned()` lookup inside mutations is not counted as a read).
 * - `feed`: statements the change feed ran on the raw SQL client (reads of _tether_changes).
 */
import {
  createStore,
  migrate,
  type Engine,
  type PrismaAdapter,
  type SqlClient,
  type SqlConnection,
} from "@tether/server";
import type { SqlDriverAdapter, SqlQuery, SqlQueryable } from "@prisma/driver-adapter-utils";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { createTestDatabase, type AppStore } from "../support/databases.ts";

export interface QueryCounters {
  statements: number;
  reads: number;
  transactions: number;
  feed: number;
}

export interface BenchStore {
  store: AppStore;
  counters: QueryCounters;
  /** store.sql, counting into counters.feed: hand this to the change feed. */
  countingSql: SqlClient;
  close(): Promise<void>;
}

function isRead(query: SqlQuery): boolean {
  const sql = query.sql.trimStart();
  return /^select/i.test(sql) && !sql.includes("pg_current_xact_id");
}

function countQueryable<Q extends SqlQueryable>(queryable: Q, counters: QueryCounters): Q {
  const queryRaw = queryable.queryRaw.bind(queryable);
  const executeRaw = queryable.executeRaw.bind(queryable);
  queryable.queryRaw = (query) => {
    counters.statements += 1;
    if (isRead(query)) counters.reads += 1;
    return queryRaw(query);
  };
  queryable.executeRaw = (query) => {
    counters.statements += 1;
    if (isRead(query)) counters.reads += 1;
    return executeRaw(query);
  };
  return queryable;
}

function countingAdapter(inner: PrismaAdapter, counters: QueryCounters): PrismaAdapter {
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    async connect(): Promise<SqlDriverAdapter> {
      const adapter = countQueryable(await inner.connect(), counters);
      const startTransaction = adapter.startTransaction.bind(adapter);
      adapter.startTransaction = async (isolationLevel) => {
        counters.transactions += 1;
        counters.statements += 1; // the BEGIN the adapter sends itself
        const tx = countQueryable(await startTransaction(isolationLevel), counters);
        if (tx.options.usePhantomQuery) {
          // COMMIT/ROLLBACK are the adapter's own (PGlite) rather than executeRaw calls: count them.
          const commit = tx.commit.bind(tx);
          const rollback = tx.rollback.bind(tx);
          tx.commit = () => ((counters.statements += 1), commit());
          tx.rollback = () => ((counters.statements += 1), rollback());
        }
        return tx;
      };
      return adapter;
    },
  };
}

function countingConnection(inner: SqlConnection, counters: QueryCounters): SqlConnection {
  return {
    query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]> {
      counters.feed += 1;
      return inner.query<Row>(sql, params);
    },
    exec(script: string) {
      counters.feed += 1;
      return inner.exec(script);
    },
  };
}

function countingSqlClient(inner: SqlClient, counters: QueryCounters): SqlClient {
  return {
    engine: inner.engine,
    ...countingConnection(inner, counters),
    transaction: (fn) => inner.transaction((tx) => fn(countingConnection(tx, counters))),
    withConnection: (fn) => inner.withConnection((conn) => fn(countingConnection(conn, counters))),
    listen: (channel, handlers) => inner.listen(channel, handlers),
    close: () => inner.close(),
  };
}

/**
 * A fresh migrated database of `engine` with counting adapters. `captureChanges: false` drops
 * Tether's change-capture triggers, so the hand-written baseline runs on a plain database.
 */
export async function createBenchStore(engine: Engine, options: { captureChanges: boolean }): Promise<BenchStore> {
  const counters: QueryCounters = { statements: 0, reads: 0, transactions: 0, feed: 0 };
  const database = await createTestDatabase(engine);
  const store = await createStore({
    prisma: (adapter) => new PrismaClient({ adapter: countingAdapter(adapter, counters) }),
    url: database.url,
    dataDir: database.dataDir,
  });
  await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
  if (!options.captureChanges) {
    for (const table of ["User", "Project", "Task", "Attachment"]) {
      await store.sql.exec(
        `DROP TRIGGER IF EXISTS "_tether_capture" ON "${table}"; DROP TRIGGER IF EXISTS "_tether_capture_truncate" ON "${table}";`,
      );
    }
  }
  return {
    store,
    counters,
    countingSql: countingSqlClient(store.sql, counters),
    async close() {
      await store.close();
      await database.drop();
    },
  };
}

export function snapshot(counters: QueryCounters): QueryCounters {
  return { ...counters };
}

export function delta(after: QueryCounters, before: QueryCounters): QueryCounters {
  return {
    statements: after.statements - before.statements,
    reads: after.reads - before.reads,
    transactions: after.transactions - before.transactions,
    feed: after.feed - before.feed,
  };
}
