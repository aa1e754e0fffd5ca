import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { getErrorShape, TRPCError, transformTRPCResponse, type AnyRouter } from "@trpc/server";

/**
 * Which browser origins may use the session cookie against this server.
 *
 * Browsers attach cookies to a WebSocket handshake, an EventSource and a form POST whatever page
 * started them; only the `Origin` header tells whose page that was. Without a check, a page on
 * https://evil.example could open a WebSocket to the app with a visitor's cookie and act with that
 * visitor's full rights (cross-site WebSocket hijacking), or post a multipart form to a mutation.
 */
export interface OriginPolicy {
  /**
   * Origins (`https://app.example.com`, scheme and host and port as the browser sends them)
   * allowed besides the server's own host, or a function deciding. The server's own host (the
   * request's `Host` header) is always allowed. Behind a proxy that rewrites `Host`, list the
   * app's public origins here (or set `trustForwardedHost`).
   */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean);
  /**
   * Also count the `X-Forwarded-Host` header as the server's own host. Only behind a proxy that
   * sets it (and drops any the client sent): otherwise a client could claim any host.
   */
  trustForwardedHost?: boolean;
}

/** The request headers the decision reads, however the runtime stores them. */
export type HeaderReader = (name: string) => string | undefined;

/**
 * True when the request carries a cookie and comes from a page of another origin: such requests
 * are refused with 403 before anything runs. A request without a cookie carries no ambient
 * authority (a token in connection params or an Authorization header is something a foreign page
 * cannot have), and a request without `Origin` is not a browser's cross-site request (browsers send
 * it on every WebSocket handshake, CORS request and POST): both pass, so non-browser clients work.
 */
export function isForeignCookieRequest(header: HeaderReader, policy: OriginPolicy): boolean {
  const origin = header("origin");
  if (origin === undefined || !header("cookie")) return false;
  return !originAllowed(origin, header, policy);
}

function originAllowed(origin: string, header: HeaderReader, policy: OriginPolicy): boolean {
  const allowed = policy.allowedOrigins;
  if (typeof allowed === "function" ? allowed(origin) : allowed?.includes(origin)) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin); // "null" (sandboxed frames, file://) throws: foreign
  } catch {
    return false;
  }
  const ownHosts = [header("host"), policy.trustForwardedHost ? header("x-forwarded-host")?.split(",")[0]?.trim() : undefined];
  return ownHosts.some((host) => host !== undefined && sameHost(parsed, host));
}

/** `Host: app.example` matches `https://app.example` (default ports are implied on both sides). */
function sameHost(origin: URL, host: string): boolean {
  try {
    return new URL(`${origin.protocol}//${host}`).host === origin.host;
  } catch {
    return false;
  }
}

/** Node's headers as a `HeaderReader`. */
export function nodeHeaders(req: IncomingMessage): HeaderReader {
  return (name) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
  };
}

const FORBIDDEN_MESSAGE = "Cross-origin request with credentials refused";

/**
 * The refusal in tRPC's own error shape, so tRPC clients see a typed FORBIDDEN: one error per call
 * of a batch (`?batch=1`, paths joined by commas), else a single one.
 */
export function forbiddenOriginBody(router: AnyRouter, url: URL, basePath: string): string {
  const config = router._def._config;
  const error = new TRPCError({ code: "FORBIDDEN", message: FORBIDDEN_MESSAGE });
  const procedurePath = decodeURIComponent(url.pathname.slice(basePath.length).replace(/^\/+/, ""));
  const paths = url.searchParams.get("batch") === "1" ? procedurePath.split(",") : [procedurePath];
  const items = paths.map((path) => ({
    error: getErrorShape({ config, error, type: "unknown", path, input: undefined, ctx: undefined }),
  }));
  const body = url.searchParams.get("batch") === "1" ? items : items[0];
  return JSON.stringify(transformTRPCResponse(config, body as never));
}

/** 403 on a Node response, in tRPC's shape. */
export function refuseForeignOrigin(res: ServerResponse, router: AnyRouter, basePath: string): void {
  const url = new URL(res.req.url ?? "/", "http://localhost");
  res.writeHead(403, { "content-type": "application/json" });
  res.end(forbiddenOriginBody(router, url, basePath));
}

/** 403 on an upgrade request, before any WebSocket exists. */
export function refuseForeignUpgrade(socket: Duplex): void {
  const body = FORBIDDEN_MESSAGE;
  socket.end(
    `HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
