import { TRPCError, type AnyRouter } from "@trpc/server";
import {
  fetchRequestHandler,
  type FetchCreateContextFnOptions,
  type FetchHandlerRequestOptions,
} from "@trpc/server/adapters/fetch";
import type { CreateTetherContext, FetchContextOptions, TransportErrorHandler } from "../context/index.ts";
import { commitResponseMeta } from "./commitHeader.ts";
import { transportLimits, type TransportLimits } from "./limits.ts";
import { forbiddenOriginBody, isForeignCookieRequest, type OriginPolicy } from "./origins.ts";

export interface NextRouteHandlerOptions<TRouter extends AnyRouter> {
  router: TRouter;
  createContext: CreateTetherContext<TRouter, FetchContextOptions>;
  /** The route's URL path, e.g. "/api/trpc" for `app/api/trpc/[trpc]/route.ts`. */
  endpoint?: string;
  /**
   * Overrides of `DEFAULT_TRANSPORT_LIMITS`; `maxBodyBytes` and `maxBatchSize` apply here (the
   * fetch adapter has no body limit of its own). SSE streams need no send budget: tRPC's stream
   * is pulled by the response, so a reader that stops pauses the subscription.
   */
  limits?: Partial<Pick<TransportLimits, "maxBodyBytes" | "maxBatchSize">>;
  /** Requests carrying a cookie from another origin get 403; see `OriginPolicy`. */
  origins?: OriginPolicy;
  onError?: TransportErrorHandler;
}

export interface NextRouteHandler {
  GET(req: Request): Promise<Response>;
  POST(req: Request): Promise<Response>;
}

/**
 * The exports of a Next.js App Router route handler: HTTP batching and SSE subscriptions with no
 * custom server (`export const { GET, POST } = nextRouteHandler({ ... })`). WebSockets need the
 * custom server (`createTetherServer`), since route handlers cannot upgrade.
 */
export function nextRouteHandler<TRouter extends AnyRouter>(
  options: NextRouteHandlerOptions<TRouter>,
): NextRouteHandler {
  const endpoint = options.endpoint ?? "/api/trpc";
  const limits = transportLimits(options.limits);
  const origins = options.origins ?? {};
  const onError = options.onError;

  const handle = async (req: Request): Promise<Response> => {
    // Before tRPC: nothing of a cross-site request that carries the user's cookie may run.
    if (isForeignCookieRequest((name) => req.headers.get(name) ?? undefined, origins)) {
      return new Response(forbiddenOriginBody(options.router, new URL(req.url), endpoint), {
        status: 403,
        headers: { "content-type": "application/json" },
      });
    }
    // `req` itself (Next's NextRequest, with `cookies` and `nextUrl`) goes to createContext; tRPC
    // reads the body through the size-limited copy.
    const createContext = (opts: FetchCreateContextFnOptions) =>
      options.createContext({
        runtime: "fetch",
        transport: "http",
        req,
        resHeaders: opts.resHeaders,
        connectionParams: opts.info.connectionParams,
        info: opts.info,
      });
    // Cast: tRPC types `createContext` through a conditional a generic router cannot resolve.
    return fetchRequestHandler<TRouter>({
      router: options.router,
      endpoint,
      req: limitBody(req, limits.maxBodyBytes),
      maxBatchSize: limits.maxBatchSize,
      createContext,
      responseMeta: commitResponseMeta,
      onError: onError
        ? ({ error, path, type }) => onError({ error, path, type, transport: "http" })
        : undefined,
    } as FetchHandlerRequestOptions<TRouter>);
  };

  return { GET: handle, POST: handle };
}

/**
 * The same body limit the Node adapter applies: the body is streamed through a counter that fails
 * with PAYLOAD_TOO_LARGE once it passes the limit, so tRPC answers 413 in its usual error shape and
 * an oversized body is never held in memory whole.
 */
function limitBody(req: Request, maxBytes: number): Request {
  if (!req.body) return req;
  let seen = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > maxBytes) controller.error(new TRPCError({ code: "PAYLOAD_TOO_LARGE" }));
      else controller.enqueue(chunk);
    },
  });
  return new Request(req.url, {
    method: req.method,
    headers: req.headers,
    body: req.body.pipeThrough(counter),
    signal: req.signal,
    // Required by Node's fetch for a streamed body; missing from TypeScript's RequestInit.
    duplex: "half",
  } as RequestInit);
}
