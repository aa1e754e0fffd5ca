import { PGlite } from "@electric-sql/pglite";
import type {
  SqlDriverAdapter,
  SqlMigrationAwareDriverAdapterFactory,
  SqlQuery,
  SqlQueryable,
} from "@prisma/driver-adapter-utils";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { throwIfQueryAborted } from "./cancellation.ts";

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
    connect: async () => fixAdapter(await inner.connect(), pglite),
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
