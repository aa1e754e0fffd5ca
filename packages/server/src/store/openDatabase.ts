import fs from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import type { SqlDriverAdapterFactory } from "@prisma/driver-adapter-utils";
import pg from "pg";
import type { Logger } from "../log/index.ts";
import { cancellableQueries } from "./cancellation.ts";
import { withCommitXidFactory } from "./commitXid.ts";
import { releaseLostClients } from "./checkedOut.ts";
import { pgliteAdapter } from "./pgliteAdapter.ts";
import { pgliteClient } from "./pgliteClient.ts";
import { DEFAULT_RECONNECT, postgresClient, type ReconnectOptions } from "./postgresClient.ts";
import type { Engine, SqlClient } from "./sqlClient.ts";

/** The driver adapter handed to the app's generated PrismaClient constructor. */
export type PrismaAdapter = SqlDriverAdapterFactory;

export interface DatabaseOptions {
  /**
   * `postgres://…` selects real Postgres. Defaults to DATABASE_URL when that is a postgres URL;
   * otherwise the embedded PGlite engine is used.
   */
  url?: string;
  /** PGlite data directory (default TETHER_DATA_DIR or `.tether/pgdata`); `memory://` for none. */
  dataDir?: string;
  /** An already-open PGlite instance to use instead of opening dataDir (left open on close). */
  pglite?: PGlite;
  /** Postgres pool size (default 10). */
  poolSize?: number;
  /** Backoff of the change-feed listening connection on Postgres. */
  reconnect?: ReconnectOptions;
}

/**
 * The raw connection behind a store, for libraries that bring their own SQL layer (pg-boss):
 * the PGlite instance itself (one connection, shared), or the Postgres URL to open a pool of
 * their own on.
 */
export type DatabaseDriver = { readonly engine: "pglite"; readonly pglite: PGlite } | { readonly engine: "postgres"; readonly url: string };

export interface Database {
  readonly engine: Engine;
  readonly driver: DatabaseDriver;
  readonly sql: SqlClient;
  /** A Prisma driver adapter on the same connections (PGlite instance or Postgres pool). */
  readonly adapter: PrismaAdapter;
  /** Where the data lives: the Postgres URL (password hidden) or the PGlite data dir. */
  readonly location: string;
}

export const DEFAULT_DATA_DIR = path.join(".tether", "pgdata");

export function isPostgresUrl(url: string | undefined): url is string {
  return !!url && /^postgres(ql)?:\/\//.test(url);
}

/** Opens the embedded PGlite database or a Postgres pool, per options and environment. */
export async function openDatabase(options: DatabaseOptions, log: Logger): Promise<Database> {
  const url = options.url ?? process.env.DATABASE_URL;
  if (!options.pglite && isPostgresUrl(url)) {
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
    // An idle pooled connection that dies (server restart) must not crash the process.
    pool.on("error", (error) => log.warn({ err: error.message }, "idle Postgres connection lost"));
    // Nor one that is checked out when the server ends it (releaseLostClients).
    releaseLostClients(pool, log);
    return {
      engine: "postgres",
      driver: { engine: "postgres", url },
      sql: postgresClient(pool, url, log, options.reconnect ?? DEFAULT_RECONNECT),
      // Statements of calls run under withQuerySignal (live executions) can be cancelled.
      adapter: withCommitXidFactory(new PrismaPg(cancellableQueries(pool, url, log))),
      location: redactUrl(url),
    };
  }
  const dataDir = options.dataDir ?? process.env.TETHER_DATA_DIR ?? DEFAULT_DATA_DIR;
  let pglite = options.pglite;
  if (!pglite) {
    if (!dataDir.startsWith("memory://")) fs.mkdirSync(dataDir, { recursive: true });
    pglite = await PGlite.create(dataDir);
  }
  return {
    engine: "pglite",
    driver: { engine: "pglite", pglite },
    sql: pgliteClient(pglite, { closeOnEnd: !options.pglite }),
    adapter: withCommitXidFactory(pgliteAdapter(pglite)),
    location: options.pglite ? "pglite (provided instance)" : dataDir,
  };
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "postgres";
  }
}
