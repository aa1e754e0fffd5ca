/**
 * @tether/server/internal — every concern's door, internals included (the reactor, the change
 * feed, policy machinery, the queue, …): for Tether's own tests, benches and tools. NOT a public
 * API: names here change without notice. Apps import `@tether/server` and its adapters.
 */
export * from "./store/index.ts";
export * from "./feed/index.ts";
export * from "./migrate/index.ts";
export * from "./schema/index.ts";
export { createLogger } from "./log/index.ts";
export type { Logger } from "./log/index.ts";
export * from "./reactor/index.ts";
export * from "./procedures/index.ts";
export * from "./auth/index.ts";
export * from "./policies/index.ts";
export * from "./limits/index.ts";
export * from "./errors/index.ts";
export * from "./context/index.ts";
export * from "./transport/index.ts";
export * from "./queue/index.ts";
export * from "./metrics/index.ts";
export * from "./presence/index.ts";
export * from "./crdt/index.ts";
export * from "./jobs/index.ts";
export * from "./workflows/index.ts";
export { tetherInternals, type TetherInternals } from "./procedures/internals.ts";
