export { createTetherAuth, SESSION_TOKEN_PARAM } from "./tetherAuth.ts";
export { DEFAULT_AUTH_RATE_LIMITS } from "./authRateLimits.ts";
export type { AuthRateLimits, AuthRateRule } from "./authRateLimits.ts";
export type { BetterAuthInstance, HeadersLike, TetherAuth, TetherAuthOptions } from "./tetherAuth.ts";
export { LiveSessions, parseTimestamp, withSessionWatch } from "./liveSessions.ts";
export type { LiveSessionsOptions, SessionGuard } from "./liveSessions.ts";
export { requireRole, requireUser, sessionExpiry } from "./identity.ts";
export type { AuthContext, AuthSession, AuthUser, Authed, IdentityLike } from "./identity.ts";
