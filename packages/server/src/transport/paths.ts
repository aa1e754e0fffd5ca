import type { IncomingMessage } from "node:http";

/** "/trpc/" and "trpc" both mean "/trpc": one spelling so comparisons are exact. */
export function normalizeBasePath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "/" : `/${trimmed}`;
}

/** The request's pathname (no query). The host does not matter for routing, so it is fixed. */
export function requestPathname(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? "/", "http://localhost").pathname;
  } catch {
    return "/";
  }
}

/** `/trpc` serves `/trpc` and `/trpc/a.b,c.d`, but not `/trpcx`. */
export function pathMatches(pathname: string, basePath: string): boolean {
  if (basePath === "/") return true;
  return pathname === basePath || pathname.startsWith(`${basePath}/`);
}
