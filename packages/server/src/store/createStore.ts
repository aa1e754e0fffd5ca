import { createLogger, type Logger } from "../log/index.ts";
import { openDatabase, type DatabaseDriver, type DatabaseOptions, type PrismaAdapter } from "./openDatabase.ts";
import { configurePlanCache, type PlanCacheConfig } from "./planCache.ts";
import type { Engine, SqlClient } from "./sqlClient.ts";

/** Anything with Prisma's lifecycle: the app's generated PrismaClient. */
export interface PrismaLike {
  $disconnect(): Promise<void>;
}

export interface StoreOptions<Client extends PrismaLike> extends DatabaseOptions {
  /** Builds the app's generated client: `(adapter) => new PrismaClient({ adapter })`. */
  prisma: (adapter: PrismaAdapter) => Client;
  log?: Logger;
  /**
   * Cache of Prisma's compiled plans for identical read requests (store/planCache.ts; on by
   * default with DEFAULT_PLAN_CACHE). Process-wide: the last store opened decides.
   */
  planCache?: Partial<PlanCacheConfig> | false;
}

export interface Store<Client extends PrismaLike> {
  readonly engine: Engine;
  /** The app's Prisma client on this store's database. */
  readonly db: Client;
  /** Raw SQL for Tether's own machinery (migrations, change feed). */
  readonly sql: SqlClient;
  /** The PGlite instance or the Postgres URL (for pg-boss, which opens its own connections). */
  readonly driver: DatabaseDriver;
  /** Where the data lives: the Postgres URL (password hidden) or the PGlite data dir. */
  readonly location: string;
  readonly log: Logger;
  close(): Promise<void>;
}

/** Opens the app's Prisma client on PGlite (embedded default) or Postgres (`DATABASE_URL`). */
export async function createStore<Client extends PrismaLike>(
  options: StoreOptions<Client>,
): Promise<Store<Client>> {
  const log = options.log ?? createLogger();
  configurePlanCache(options.planCache ?? {});
  const database = await openDatabase(options, log);
  const db = options.prisma(database.adapter);
  return {
    engine: database.engine,
    db,
    sql: database.sql,
    driver: database.driver,
    location: database.location,
    log,
    async close() {
      await db.$disconnect();
      await database.sql.close();
    },
  };
}
