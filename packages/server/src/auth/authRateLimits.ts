import type { IncomingMessage } from "node:http";
import type { BetterAuthOptions, BetterAuthPlugin } from "better-auth";
import { APIError, createAuthMiddleware } from "better-auth/api";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";

/** `max` requests per `window` seconds. */
export interface AuthRateRule {
  window: number;
  max: number;
}

export interface AuthRateLimits {
  /** Any auth endpoint, per client IP and endpoint (session reads included). */
  all: AuthRateRule;
  /** `/sign-in/*`, per client IP. */
  signIn: AuthRateRule;
  /** `/sign-up/*`, per client IP. */
  signUp: AuthRateRule;
  /**
   * Sign-in attempts per account (email), from any IP: password guessing spread over many
   * addresses (or behind a spoofed `X-Forwarded-For`) still stops here.
   */
  signInPerEmail: AuthRateRule;
  /**
   * better-auth's counter storage: "memory" (one node; better-auth keeps one store per process),
   * "database" (needs better-auth's `rateLimit` model in the Prisma schema) or "secondary-storage".
   */
  storage: "memory" | "database" | "secondary-storage";
}

/**
 * better-auth's rate limiter, on in every mode (better-auth itself turns it on only when
 * NODE_ENV is "production", so `npm run dev` had none). Over a limit: HTTP 429 with
 * `{ message }` and `X-Retry-After`.
 */
export const DEFAULT_AUTH_RATE_LIMITS: AuthRateLimits = {
  /** better-auth's own general default. */
  all: { window: 10, max: 100 },
  /** A person mistyping a password retries a few times a minute. */
  signIn: { window: 60, max: 10 },
  signUp: { window: 60, max: 10 },
  /** 10 attempts per account per 15 minutes. */
  signInPerEmail: { window: 15 * 60, max: 10 },
  storage: "memory",
};

/** better-auth `rateLimit` settings (merged under an app's own `betterAuth.rateLimit`). */
export function betterAuthRateLimit(limits: AuthRateLimits | false): NonNullable<BetterAuthOptions["rateLimit"]> {
  if (limits === false) return { enabled: false };
  return {
    enabled: true,
    window: limits.all.window,
    max: limits.all.max,
    storage: limits.storage,
    customRules: { "/sign-in/*": limits.signIn, "/sign-up/*": limits.signUp },
  };
}

/** A better-auth plugin counting sign-in attempts per email (TOO_MANY_REQUESTS, HTTP 429, over the rule). */
export function signInPerEmailLimit(rule: AuthRateRule): BetterAuthPlugin {
  const limiter = new RateLimiterMemory({ points: rule.max, duration: rule.window, keyPrefix: "tether_auth_sign_in_email" });
  return {
    id: "tether-sign-in-per-email",
    hooks: {
      before: [
        {
          matcher: (context) => context.path === "/sign-in/email",
          handler: createAuthMiddleware(async (ctx) => {
            const email = (ctx.body as { email?: unknown } | undefined)?.email;
            if (typeof email !== "string") return;
            try {
              await limiter.consume(email.trim().toLowerCase());
            } catch (error) {
              if (!(error instanceof RateLimiterRes)) throw error;
              const retryAfter = Math.ceil(error.msBeforeNext / 1000);
              throw new APIError("TOO_MANY_REQUESTS", { message: `too many sign-in attempts for this account; retry in ${retryAfter} s` }, { "X-Retry-After": String(retryAfter) });
            }
          }),
        },
      ],
    },
  };
}

/**
 * better-auth finds the client's address in `X-Forwarded-For` (trusted when it holds one address,
 * or per `advanced.ipAddress.trustedProxies`). A request straight to Tether's node server has
 * none: its socket's address is put there, so each client gets its own counters instead of one
 * bucket shared by everyone.
 */
export function forwardSocketAddress(req: IncomingMessage): void {
  if (req.headers["x-forwarded-for"] === undefined && req.socket.remoteAddress) req.headers["x-forwarded-for"] = req.socket.remoteAddress;
}
