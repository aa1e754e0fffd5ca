/**
 * Server-side prefetch for pages: runs the page's queries through the app's router with the
 * caller's own context (policies apply) and returns TanStack Query's dehydrated cache for a
 * `<HydrationBoundary>`. The client's `useLiveQuery` finds the data in the same cache entries,
 * renders it at once (it is in the server-rendered HTML), and its subscription keeps it live.
 * Server components only.
 */
import { headers } from "next/headers";
import { dehydrate, QueryClient, type DehydratedState, type QueryFunction, type QueryKey } from "@tanstack/react-query";
import { createTRPCOptionsProxy, type TRPCOptionsProxy } from "@trpc/tanstack-react-query";
import type { AuthContext } from "@tether/server";
import { pageBridge } from "../server/pageBridge.ts";
import { dehydrateData } from "./transformer.ts";
import type { AppRouter } from "../server/router.ts";

interface Prefetchable {
  queryKey: QueryKey;
  queryFn?: unknown;
}

export type PageQueries = (trpc: TRPCOptionsProxy<AppRouter>) => Prefetchable[];

export async function prefetchPage(queries: PageQueries): Promise<DehydratedState | undefined> {
  // Read first, always: it is what makes Next render the page per request (never prerendered at
  // build time, when no app is running and the page would be frozen as "signed out").
  const requestHeaders = new Headers(await headers());
  const bridge = pageBridge();
  if (!bridge) return undefined;
  return prefetchWith(bridge.router, await bridge.contextFromHeaders(requestHeaders), queries);
}

/**
 * The page's queries run through `router` as `ctx`, dehydrated. Failed queries (a project that is
 * not yours: NOT_FOUND) are left out; the client asks again. The data goes through the router's
 * transformer (superjson), and the browser's QueryClient (`src/lib/queryClient.ts`) hydrates it back:
 * Dates stay Dates, as in live updates.
 */
export async function prefetchWith(router: AppRouter, ctx: AuthContext, queries: PageQueries): Promise<DehydratedState> {
  const queryClient = new QueryClient();
  const trpc = createTRPCOptionsProxy<AppRouter>({ router, ctx, queryClient });
  await Promise.all(
    queries(trpc).map(({ queryKey, queryFn }) =>
      queryClient.prefetchQuery({ queryKey, queryFn: queryFn as QueryFunction<unknown, QueryKey> }),
    ),
  );
  return dehydrate(queryClient, dehydrateData);
}
