/**
 * @tether/server — what an app builds with: the store, migrations, `initTether` (procedures, live
 * queries, jobs, workflows, CRDT fields, presence), auth and policies, limits' stores, metrics.
 *
 * Host adapters live under their own entry points, like tRPC's: `@tether/server/adapters/node`
 * (`createTetherServer`: HTTP + SSE + WebSocket) and `@tether/server/adapters/next` (App Router
 * route handler). The wire protocol is `@tether/protocol`. Everything else — the reactor, the
 * change feed's machinery, policy internals — is `@tether/server/internal`: for Tether's own tests
 * and tools, not a public API (it changes without notice).
 *
 * Types: every concern's types are exported (they cost nothing at runtime); runtime names only the
 * ones an app calls.
 */
export { createStore } from "./store/index.ts";
export { createChangeFeed } from "./feed/index.ts";
export { migrate, MigrationError } from "./migrate/index.ts";
export { initTether } from "./procedures/index.ts";
export { createTetherAuth, requireRole, requireUser } from "./auth/index.ts";
export { denyAll, withoutPolicies } from "./policies/index.ts";
export { memoryRateLimitStore, postgresRateLimitStore, redisRateLimitStore } from "./limits/index.ts";
export { readHeader } from "./context/index.ts";
export { createMetrics } from "./metrics/index.ts";
export { createLogger } from "./log/index.ts";
export { WorkflowStepError } from "./workflows/index.ts";

export type * from "./store/index.ts";
export type * from "./feed/index.ts";
export type * from "./migrate/index.ts";
export type * from "./schema/index.ts";
export type * from "./log/index.ts";
export type * from "./reactor/index.ts";
export type * from "./procedures/index.ts";
export type * from "./context/index.ts";
export type * from "./auth/index.ts";
export type * from "./policies/index.ts";
export type * from "./limits/index.ts";
export type * from "./errors/index.ts";
export type * from "./metrics/index.ts";
export type * from "./presence/index.ts";
export type * from "./crdt/index.ts";
export type * from "./jobs/index.ts";
export type * from "./workflows/index.ts";
