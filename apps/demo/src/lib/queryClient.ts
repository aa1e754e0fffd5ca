import { QueryClient } from "@tanstack/react-query";
import { hydrateData } from "./transformer.ts";

/** The browser's QueryClient: server-rendered pages' data is hydrated through the router's transformer. */
export function browserQueryClient(): QueryClient {
  return new QueryClient({ defaultOptions: { hydrate: hydrateData } });
}
