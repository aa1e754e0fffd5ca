/**
 * @tether/client — live TanStack Query cache entries over tRPC subscriptions.
 *
 * - `core/`: framework-agnostic (tRPC client, live-query registry, patches, positions,
 *   connection status, read-your-writes). No React.
 * - `react/`: `createTetherReact<AppRouter>()` → provider and hooks over the core.
 */
export * from "./core/index.ts";
export * from "./crdt/index.ts";
export * from "./presence/index.ts";
export * from "./react/index.ts";
