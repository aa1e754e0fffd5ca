import type { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { TRPC_ERROR_CODES_BY_KEY, type TRPCErrorShape } from "@trpc/server/rpc";
import { MappedDatabaseError, toClientError } from "./databaseErrors.ts";

/** Codes a client may simply retry later (a limit, a busy server). */
const RETRYABLE = new Set<TRPCError["code"]>(["TOO_MANY_REQUESTS", "SERVICE_UNAVAILABLE"]);

/** The `data` of every Tether error shape: tRPC's, without `stack`, plus `retryable`. */
export interface TetherErrorData {
  code: TRPCError["code"];
  httpStatus: number;
  path?: string;
  /** True when retrying later may succeed (rate limit, busy database, write conflict). */
  retryable: boolean;
}

export type TetherErrorShape = TRPCErrorShape<TetherErrorData>;

/**
 * Tether's tRPC `errorFormatter`, for every procedure and transport (HTTP, WebSocket, SSE): never
 * a stack trace, in any mode (tRPC adds one whenever `isDev`); database errors that reached here
 * without passing a Tether middleware (thrown while a subscription streams) typed as they would
 * have been there; `data.retryable` for the codes worth retrying.
 */
export function tetherErrorFormatter({ shape, error }: { shape: TRPCErrorShape; error: TRPCError }): TetherErrorShape {
  const mapped = toClientError(error);
  const code = mapped.code;
  const data = shape.data as { path?: string };
  return {
    code: TRPC_ERROR_CODES_BY_KEY[code],
    message: mapped === error ? shape.message : mapped.message,
    data: {
      code,
      httpStatus: getHTTPStatusCodeFromError(mapped),
      ...(data.path !== undefined ? { path: data.path } : {}),
      retryable: RETRYABLE.has(code) || (mapped instanceof MappedDatabaseError && mapped.retryable),
    },
  };
}
