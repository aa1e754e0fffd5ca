import { TRPCError } from "@trpc/server";
import {
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from "rate-limiter-flexible";

/** `points` calls per `duration` seconds; over it, refused for `blockDuration` seconds (default: until the window ends). */
export interface RateLimitRule {
  points: number;
  duration: number;
  blockDuration?: number;
}

/** Builds the limiter for one rule; `keyPrefix` separates rules (and procedures) in a shared store. */
export type RateLimitStore = (config: RateLimitRule & { keyPrefix: string }) => RateLimiterAbstract | Promise<RateLimiterAbstract>;

export interface RateLimitOptions<Ctx> {
  /** Every Tether procedure call (per caller, per procedure). Default: none (only `procedures`). */
  default?: RateLimitRule | false;
  /** Per procedure path (`tasks.add`, `$live`): its own rule, or `false` for none. */
  procedures?: Readonly<Record<string, RateLimitRule | false>>;
  /** Who is calling. Default: `user.id`, else `ip` from the context, else "anonymous". */
  key?: (ctx: Ctx) => string;
  /** Where counters live. Default: memory (one node). {@link redisRateLimitStore} / {@link postgresRateLimitStore} share them between nodes. */
  store?: RateLimitStore;
}

export const memoryRateLimitStore: RateLimitStore = (config) => new RateLimiterMemory(config);

/** Minimal shape of an ioredis / node-redis client (rate-limiter-flexible accepts both). */
export type RedisLikeClient = object;

/**
 * Counters in Redis, shared by every node. When Redis fails, each node falls back to counting in
 * memory (rate-limiter-flexible's insurance limiter) rather than refusing every call.
 */
export function redisRateLimitStore(client: RedisLikeClient, options: { insurance?: boolean } = {}): RateLimitStore {
  return (config) =>
    new RateLimiterRedis({
      ...config,
      storeClient: client,
      insuranceLimiter: options.insurance === false ? undefined : new RateLimiterMemory(config),
    });
}

/** What `postgresRateLimitStore` needs of a `pg.Pool`. */
export interface PgPoolLike {
  query(text: string): Promise<unknown>;
}

/**
 * Counters in Postgres (a `pg.Pool`), one table per rule in their own schema (default
 * `tether_limits`), outside the app's schema so change capture never sees them.
 */
export function postgresRateLimitStore(pool: PgPoolLike, options: { schema?: string; insurance?: boolean } = {}): RateLimitStore {
  const schemaName = options.schema ?? "tether_limits";
  if (!/^[a-z_][a-z0-9_]*$/.test(schemaName)) throw new Error(`invalid schema name ${schemaName}`);
  let schemaReady: Promise<unknown> | null = null;
  return async (config) => {
    schemaReady ??= pool.query(`CREATE SCHEMA IF NOT EXISTS "${schemaName}"`);
    await schemaReady;
    return new Promise<RateLimiterAbstract>((resolve, reject) => {
      const limiter: RateLimiterAbstract = new RateLimiterPostgres(
        {
          ...config,
          storeClient: pool,
          schemaName,
          tableName: config.keyPrefix.replace(/[^a-zA-Z0-9_]/g, "_").slice(0, 60),
          // Its hourly cleanup timer would keep the process alive; expired rows are overwritten anyway.
          clearExpiredByTimeout: false,
          insuranceLimiter: options.insurance === false ? undefined : new RateLimiterMemory(config),
        },
        (error?: unknown) => (error ? reject(error) : resolve(limiter)),
      );
    });
  };
}

function defaultKey(ctx: unknown): string {
  const c = ctx as { user?: { id?: unknown } | null; ip?: unknown } | null;
  if (c?.user?.id !== undefined && c.user.id !== null) return `user:${String(c.user.id)}`;
  if (typeof c?.ip === "string" && c.ip) return `ip:${c.ip}`;
  return "anonymous";
}

/** Per-caller, per-procedure call limits; a refused call gets TOO_MANY_REQUESTS. */
export class RateLimits<Ctx> {
  private readonly limiters = new Map<string, Promise<RateLimiterAbstract> | null>();
  private readonly store: RateLimitStore;
  private readonly key: (ctx: Ctx) => string;

  constructor(private readonly options: RateLimitOptions<Ctx>) {
    this.store = options.store ?? memoryRateLimitStore;
    this.key = options.key ?? defaultKey;
  }

  /** Counts one call of `path` by `ctx`'s caller; throws TOO_MANY_REQUESTS over the limit. */
  async consume(ctx: Ctx, path: string): Promise<void> {
    const limiter = this.limiterFor(path);
    if (!limiter) return;
    const key = this.key(ctx);
    try {
      await (await limiter).consume(key);
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        throw new TRPCError({
          code: "TOO_MANY_REQUESTS",
          message: `rate limit for ${path} reached; retry in ${Math.ceil(error.msBeforeNext / 1000)} s`,
        });
      }
      throw error;
    }
  }

  private limiterFor(path: string): Promise<RateLimiterAbstract> | null {
    if (this.limiters.has(path)) return this.limiters.get(path)!;
    const rule = this.options.procedures?.[path] ?? this.options.default;
    const limiter = rule ? Promise.resolve(this.store({ ...rule, keyPrefix: `tether_rl_${path}` })) : null;
    // A store that failed to start (e.g. its table) is retried on the next call.
    limiter?.catch(() => this.limiters.delete(path));
    this.limiters.set(path, limiter);
    return limiter;
  }
}
