import { TRPCError } from "@trpc/server";

export interface SubscriptionLimitOptions {
  /**
   * Live subscriptions open at once on one connection. A WebSocket's calls share the context
   * `createContext` made for it, so the count is per context object: per WebSocket, and per
   * request for SSE (where `maxPerUser` is the one that bites).
   */
  maxPerConnection?: number;
  /** Live subscriptions open at once by one user (`ctx.user.id`), on this node. */
  maxPerUser?: number;
}

/**
 * The defaults (`limits.subscriptions` overrides each).
 * - `maxPerConnection` 1,000: a page holding a few hundred live queries and documents stays far
 *   below it, while one socket cannot make the node hold unbounded subscription state.
 * - `maxPerUser` unlimited: a user's connections are already bounded by the transport and rate
 *   limits; an app with many tabs per user sets it if it wants a per-user cap.
 */
export const DEFAULT_SUBSCRIPTION_LIMITS: Required<SubscriptionLimitOptions> = {
  maxPerConnection: 1000,
  maxPerUser: Infinity,
};

/** Counts open live subscriptions; a subscription over a limit is refused with TOO_MANY_REQUESTS. */
export class SubscriptionLimits {
  private readonly perConnection = new WeakMap<object, number>();
  private readonly perUser = new Map<string, number>();
  private readonly maxPerConnection: number;
  private readonly maxPerUser: number;

  constructor(options: SubscriptionLimitOptions = {}) {
    this.maxPerConnection = options.maxPerConnection ?? DEFAULT_SUBSCRIPTION_LIMITS.maxPerConnection;
    this.maxPerUser = options.maxPerUser ?? DEFAULT_SUBSCRIPTION_LIMITS.maxPerUser;
  }

  /** Takes a slot for `ctx`; returns its release (idempotent). */
  acquire(ctx: object): () => void {
    const user = (ctx as { user?: { id?: unknown } | null }).user?.id;
    const userKey = user === undefined || user === null ? null : String(user);
    const connection = this.perConnection.get(ctx) ?? 0;
    if (connection >= this.maxPerConnection) {
      throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: `at most ${this.maxPerConnection} live subscriptions per connection` });
    }
    const byUser = userKey === null ? 0 : (this.perUser.get(userKey) ?? 0);
    if (userKey !== null && byUser >= this.maxPerUser) {
      throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: `at most ${this.maxPerUser} live subscriptions per user` });
    }
    this.perConnection.set(ctx, connection + 1);
    if (userKey !== null) this.perUser.set(userKey, byUser + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.perConnection.set(ctx, (this.perConnection.get(ctx) ?? 1) - 1);
      if (userKey === null) return;
      const left = (this.perUser.get(userKey) ?? 1) - 1;
      if (left > 0) this.perUser.set(userKey, left);
      else this.perUser.delete(userKey);
    };
  }
}
