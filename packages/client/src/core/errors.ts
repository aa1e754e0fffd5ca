/** The tRPC error code of a failed call (`error.data.code`), if it has one. */
export function trpcErrorCode(error: unknown): string | undefined {
  const code = (error as { data?: { code?: unknown } } | null)?.data?.code;
  return typeof code === "string" ? code : undefined;
}

/** tRPC error codes that retrying cannot fix: the caller must change something. */
const PERMANENT_CODES: ReadonlySet<string> = new Set([
  "BAD_REQUEST",
  "PARSE_ERROR",
  "NOT_FOUND",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "METHOD_NOT_SUPPORTED",
  "UNPROCESSABLE_CONTENT",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
]);

/** Should a subscription or call that failed with `error` stop retrying? (`alsoPermanent`: codes a caller adds.) */
export function isPermanentError(error: unknown, alsoPermanent: readonly string[] = []): boolean {
  const code = trpcErrorCode(error);
  return code !== undefined && (PERMANENT_CODES.has(code) || alsoPermanent.includes(code));
}
