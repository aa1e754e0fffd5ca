/**
 * Test databases on both engines: a fresh in-memory PGlite, and (when reachable) a fresh database
 * on the Postgres at 127.0.0.1:5432 made for this test and dropped after. In CI, an unreachable
 * Postgres fails the run instead of silently testing one engine.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { createStore, migrate, type Engine, type Store } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { PGLITE_TEMPLATE_ENV } from "./pgliteTemplate.ts";

export const POSTGRES_ADMIN_URL = process.env.TETHER_TEST_POSTGRES_URL ?? "postgres://root@127.0.0.1:5432/test";

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

const reachable = await postgresReachable();
if (!reachable && (process.env.CI || process.env.TETHER_REQUIRE_POSTGRES)) {
  throw new Error(`Postgres is required in CI but ${POSTGRES_ADMIN_URL} is unreachable`);
}

/** The engines this run tests: PGlite always, Postgres when reachable (always in CI). */
export const engines: Engine[] = reachable ? ["pglite", "postgres"] : ["pglite"];

/** A fresh, empty database; `url` is undefined for PGlite (in-memory). */
export interface TestDatabase {
  engine: Engine;
  url?: string;
  dataDir?: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === "pglite") return { engine, dataDir: "memory://", drop: async () => undefined };
  const name = `tether_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    engine,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

export type AppStore = Store<PrismaClient>;

/** A migrated store of the demo schema on a fresh database of the given engine. */
export async function createTestStore(
  engine: Engine,
  options: { migrate?: boolean } = {},
): Promise<{ store: AppStore; database: TestDatabase; close(): Promise<void> }> {
  if (engine === "pglite" && options.migrate !== false && process.env[PGLITE_TEMPLATE_ENV]) return migratedPgliteStore();
  const database = await createTestDatabase(engine);
  const store = await createStore({
    prisma: (adapter) => new PrismaClient({ adapter }),
    url: database.url,
    dataDir: database.dataDir,
    // Tests kill the listener on purpose; come back fast.
    reconnect: { initialDelayMs: 20, maxDelayMs: 500 },
  });
  if (options.migrate !== false) await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
  return {
    store,
    database,
    async close() {
      await store.close();
      await database.drop();
    },
  };
}

/** The run's migrated PGlite dump (see pgliteTemplate.ts), read once per test file. */
let pgliteTemplate: Promise<Blob> | undefined;

/** A fresh in-memory PGlite loaded from the run's migrated dump: the same database, made faster. */
async function migratedPgliteStore(): Promise<{ store: AppStore; database: TestDatabase; close(): Promise<void> }> {
  pgliteTemplate ??= readFile(process.env[PGLITE_TEMPLATE_ENV]!).then((bytes) => new Blob([bytes]));
  const pglite = await PGlite.create({ loadDataDir: await pgliteTemplate });
  const store = await createStore({
    prisma: (adapter) => new PrismaClient({ adapter }),
    pglite,
    reconnect: { initialDelayMs: 20, maxDelayMs: 500 },
  });
  return {
    store,
    database: { engine: "pglite", dataDir: "memory://", drop: async () => undefined },
    async close() {
      // A provided PGlite instance outlives its store: close it too.
      await store.close();
      await pglite.close();
    },
  };
}
