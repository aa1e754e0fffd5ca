// tRPC's path-based procedure lookup and call are exported only from its "unstable" entry:
// they are wrapped here, in one module, so an upgrade touches one file.
import { TRPCError, type AnyRouter } from "@trpc/server";
import { callProcedure, getProcedureAtPath } from "@trpc/server/unstable-core-do-not-import";
import { withQuerySignal } from "../store/index.ts";

/** Throws NOT_FOUND for an unknown path and BAD_REQUEST for a path that is not a query. */
export async function assertQueryPath(router: AnyRouter, path: string): Promise<void> {
  const procedure = await getProcedureAtPath(router, path);
  if (!procedure) throw new TRPCError({ code: "NOT_FOUND", message: `no procedure at path "${path}"` });
  if (procedure._def.type !== "query") {
    throw new TRPCError({ code: "BAD_REQUEST", message: `"${path}" is a ${procedure._def.type}; only queries can be live` });
  }
}

/**
 * Calls the query at `path` as tRPC would for a client: middlewares, input validation, ctx.
 * Aborting `signal` also cancels the SQL the call is running (store's withQuerySignal).
 */
export function callQuery(router: AnyRouter, path: string, ctx: unknown, input: unknown, signal: AbortSignal): Promise<unknown> {
  return withQuerySignal(signal, () => callProcedure({
    router,
    path,
    ctx,
    type: "query",
    getRawInput: async () => input,
    signal,
    batchIndex: 0,
  }) as Promise<unknown>);
}
