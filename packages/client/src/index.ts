/**
 * @tether/client — live TanStack Query cache entries over tRPC subscriptions. This entry point is
 * the framework-agnostic core (tRPC client, live-query registry, patches, positions, connection
 * status, read-your-writes, jobs and workflows): it loads no React, no Loro and no IndexedDB, so a
 * Node script or another framework can use it (docs/client.md).
 *
 * The rest are subpaths, loaded only by who imports them:
 * - `@tether/client/react`: `createTetherReact<AppRouter>()` → provider and hooks over the core.
 * - `@tether/client/crdt`: collaborative fields (Loro documents, IndexedDB persistence).
 * - `@tether/client/presence`: presence rooms (Loro ephemeral stores).
 * - `@tether/client/codemirror`: a CodeMirror 6 binding for CRDT text fields.
 */
export * from "./core/index.ts";
