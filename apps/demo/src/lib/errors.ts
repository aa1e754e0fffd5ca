import { TRPCClientError } from "@trpc/client";

/** The tRPC error code of a failed call (`NOT_FOUND`, `UNAUTHORIZED`, …), if it is one. */
export function errorCode(error: unknown): string | undefined {
  if (error instanceof TRPCClientError) return (error.data as { code?: string } | undefined)?.code;
  return undefined;
}
