import { CRDT_PUSH, LIVE_PROCEDURE, PRESENCE_SET } from "@tether/protocol";
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

/** What kind of procedure a call is (tRPC's `type`): each kind has its own default rule. */
export type ProcedureKind = "query" | "mutation" | "subscription";

export interface RateLimitOptions<Ctx> {
  /** Every query procedure, per caller and procedure. Default {@link DEFAULT_RATE_LIMITS}.query. */
  query?: RateLimitRule | false;
  /** Every mutation procedure, per caller and procedure. Default {@link DEFAULT_RATE_LIMITS}.mutation. */
  mutation?: RateLimitRule | false;
  /** Subscriptions opened, per caller and procedure. Default {@link DEFAULT_RATE_LIMITS}.subscription. */
  subscription?: RateLimitRule | false;
  /** One rule for every procedure not listed in `procedures`, in place of the per-kind rules. */
  default?: RateLimitRule | false;
  /**
   * Per procedure path (`tasks.add`, `$live`): its own rule, or `false` for none. Merged over
   * {@link DEFAULT_RATE_LIMITS}.procedures (Tether's own `$live`, `$crdt.*`, `$presence.*`).
   */
  procedures?: Readonly<Record<string, RateLimitRule | false>>;
  /** Who is calling. Default: `user.id`, else `ip` from the context, else "anonymous". */
  key?: (ctx: Ctx) => string;
  /** Where counters live. Default: memory (one node). {@link redisRateLimitStore} / {@link postgresRateLimitStore} share them between nodes. */
  store?: RateLimitStore;
}

/**
 * Tether's rate limits when the app sets none (`limits.rate` unset). Every rule counts calls per
 * caller (user, else IP, else "anonymous") per procedure path, in fixed windows; over it the call
 * is refused with TOO_MANY_REQUESTS. `limits: { rate: false }` turns them all off; any field the
 * app sets replaces the default's.
 */
export const DEFAULT_RATE_LIMITS = {
  /** Queries: 10 a second sustained per procedure; a page load or a reconnect is far below. */
  query: { points: 600, duration: 60 },
  /**
   * Mutations: 2 a second sustained per procedure, bursts up to 120. Each is a transaction: a
   * flood of them (1,000 in one batch) would hold every connection and starve other users.
   */
  mutation: { points: 120, duration: 60 },
  /** Other subscriptions opened (not their messages): a page opens a few, a reconnect reopens them. */
  subscription: { points: 120, duration: 60 },
  procedures: {
    /** Live queries opened: one procedure for every query of the app, so more than other subscriptions. */
    [LIVE_PROCEDURE]: { points: 300, duration: 60 },
    /**
     * CRDT updates: 60 a second sustained per user. `@tether/client` sends each keystroke's
     * commit at once (up to 16 pushes in flight: waiting for an ack would hold keystrokes behind
     * a database commit), so a typist at 10–15 keys/s makes up to 15 pushes/s, and a user may
     * have a few tabs or documents open; 20/s would refuse a fast typist with two tabs. A push
     * costs far less than a mutation: relayed from memory, and group-committed with every push
     * to the same document meanwhile (one transaction per document and round, not per push).
     */
    [CRDT_PUSH]: { points: 3600, duration: 60 },
    /** Presence (cursor, selection) updates: 20 a second sustained. */
    [PRESENCE_SET]: { points: 1200, duration: 60 },
  } as Readonly<Record<string, RateLimitRule | false>>,
} as const satisfies Required<Pick<RateLimitOptions<unknown>, "query" | "mutation" | "subscription" | "procedures">>;

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

/** Who is calling, for limits: `user:<id>`, else `ip:<address>` (`ctx.ip`), else "anonymous". */
export function callerKey(ctx: unknown): string {
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
  private readonly options: RateLimitOptions<Ctx>;

  /** `options` are merged over {@link DEFAULT_RATE_LIMITS}: a field set replaces the default's. */
  constructor(options: RateLimitOptions<Ctx> = {}) {
    this.options = { ...DEFAULT_RATE_LIMITS, ...options, procedures: { ...DEFAULT_RATE_LIMITS.procedures, ...options.procedures } };
    this.store = options.store ?? memoryRateLimitStore;
    this.key = options.key ?? callerKey;
  }

  /** The rule a call of `path` (of this kind) is counted against; null when it is not limited. */
  ruleFor(path: string, kind: ProcedureKind): RateLimitRule | null {
    const { procedures, default: fallback } = this.options;
    if (procedures && Object.hasOwn(procedures, path)) return procedures[path] || null;
    if (fallback !== undefined) return fallback || null;
    return this.options[kind] || null;
  }

  /** Counts one call of `path` by `ctx`'s caller; throws TOO_MANY_REQUESTS over the limit. */
  async consume(ctx: Ctx, path: string, kind: ProcedureKind): Promise<void> {
    const limiter = this.limiterFor(path, kind);
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

  private limiterFor(path: string, kind: ProcedureKind): Promise<RateLimiterAbstract> | null {
    if (this.limiters.has(path)) return this.limiters.get(path)!;
    const rule = this.ruleFor(path, kind);
    const limiter = rule ? Promise.resolve(this.store({ ...rule, keyPrefix: `tether_rl_${path}` })) : null;
    // A store that failed to start (e.g. its table) is retried on the next call.
    limiter?.catch(() => this.limiters.delete(path));
    this.limiters.set(path, limiter);
    return limiter;
  }
}
