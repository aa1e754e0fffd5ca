import { PGlite } from "@electric-sql/pglite";
import type {
  SqlDriverAdapter,
  SqlMigrationAwareDriverAdapterFactory,
  SqlQuery,
  SqlQueryable,
} from "@prisma/driver-adapter-utils";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { querySignal, QueryCancelledError, reportedWait, throwIfQueryAborted } from "./cancellation.ts";

/**
 * pglite-prisma-adapter 0.6.1 (the last line for Prisma 6) predates Prisma 6.19's argument
 * types: 6.19 sends `Bytes` arguments as base64 strings tagged `{ scalarType: "bytes" }`, which
 * the adapter passes through untouched and PGlite rejects ("Invalid input for bytea type").
 * Its `executeScript` also does not await PGlite's `exec`, so Prisma's schema engine (the
 * shadow database of `prisma migrate diff --from-migrations`) runs the next statement while a
 * migration script is still executing. This wraps the adapter and fixes both.
 */
export function pgliteAdapter(pglite: PGlite): SqlMigrationAwareDriverAdapterFactory {
  const inner = new PrismaPGlite(pglite) as unknown as SqlMigrationAwareDriverAdapterFactory;
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => takeTurns(fixAdapter(await inner.connect(), pglite)),
    async connectToShadowDb() {
      const shadow = new PGlite();
      const adapter = await (new PrismaPGlite(shadow) as unknown as SqlMigrationAwareDriverAdapterFactory).connect();
      return fixAdapter(adapter, shadow);
    },
  };
}

function fixAdapter(adapter: SqlDriverAdapter, pglite: PGlite): SqlDriverAdapter {
  fixBytesArguments(adapter);
  adapter.executeScript = async (script) => {
    await pglite.exec(script);
  };
  const startTransaction = adapter.startTransaction.bind(adapter);
  adapter.startTransaction = async (isolationLevel) => {
    const tx = await startTransaction(isolationLevel);
    fixBytesArguments(tx);
    return tx;
  };
  return adapter;
}

/** Also: a statement of an abandoned call (see cancellation.ts) is not started. */
function fixBytesArguments(queryable: SqlQueryable): void {
  const queryRaw = queryable.queryRaw.bind(queryable);
  const executeRaw = queryable.executeRaw.bind(queryable);
  queryable.queryRaw = async (query) => {
    throwIfQueryAborted();
    return queryRaw(decodeBytes(query));
  };
  queryable.executeRaw = async (query) => {
    throwIfQueryAborted();
    return executeRaw(decodeBytes(query));
  };
}

function decodeBytes(query: SqlQuery): SqlQuery {
  if (!query.argTypes.some((t) => t.scalarType === "bytes")) return query;
  const args = query.args.map((arg, i) => {
    const type = query.argTypes[i];
    if (type?.scalarType !== "bytes" || arg === null) return arg;
    if (typeof arg === "string") return Buffer.from(arg, "base64");
    if (Array.isArray(arg) && type.arity === "list") {
      return arg.map((item) => (typeof item === "string" ? Buffer.from(item, "base64") : item));
    }
    return arg;
  });
  return { ...query, args };
}

/**
 * Statements of cancellable calls (live executions, see cancellation.ts) take turns here before
 * reaching PGlite, which runs one statement at a time anyway. Waiting here is reported as a
 * connection wait (not query time), and a statement whose call is abandoned while it waits is
 * withdrawn instead of run. Statements inside transactions are not gated (the transaction already
 * holds the connection).
 */
function takeTurns(adapter: SqlDriverAdapter): SqlDriverAdapter {
  let tail: Promise<void> = Promise.resolve();
  const gate = <A, R>(statement: (arg: A) => Promise<R>) => async (arg: A): Promise<R> => {
    const signal = querySignal();
    if (!signal) return statement(arg);
    throwIfQueryAborted();
    const previous = tail;
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => (finish = resolve));
    // The next statement waits for this one's predecessor too: withdrawing never lets two run.
    tail = previous.then(() => mine);
    try {
      await reportedWait(() => untilAborted(previous, signal));
      return await statement(arg);
    } finally {
      finish();
    }
  };
  adapter.queryRaw = gate(adapter.queryRaw.bind(adapter));
  adapter.executeRaw = gate(adapter.executeRaw.bind(adapter));
  return adapter;
}

function untilAborted(turn: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new QueryCancelledError("canceling statement due to user request (call abandoned)"));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new QueryCancelledError("canceling statement due to user request (call abandoned)"));
    signal.addEventListener("abort", onAbort, { once: true });
    void turn.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
