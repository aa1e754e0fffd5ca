/**
 * How server-rendered pages reach the running app. Next.js bundles pages into their own module
 * graph, so a page importing the router would build a second store; instead server.ts publishes
 * the one it built here (a process-wide symbol) and pages read it. Type-only imports: nothing of
 * the server is bundled into pages by this file.
 */
import type { AuthContext } from "@tether/server";
import type { AppRouter } from "./router.ts";

export interface PageBridge {
  router: AppRouter;
  /** The caller's context from a page request's headers (its session cookie). */
  contextFromHeaders(headers: Headers): Promise<AuthContext>;
}

const KEY = Symbol.for("tether.demo.pageBridge");
type Registry = { [KEY]?: PageBridge };

export function publishToPages(bridge: PageBridge | undefined): void {
  (globalThis as Registry)[KEY] = bridge;
}

/** The running app, or null when pages are rendered without server.ts (e.g. during `next build`). */
export function pageBridge(): PageBridge | null {
  return (globalThis as Registry)[KEY] ?? null;
}
