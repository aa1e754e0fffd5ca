export { isDatabaseUnavailable, MappedDatabaseError, REFERENCE_NOT_FOUND, toClientError } from "./databaseErrors.ts";
export type { ClientErrorOptions } from "./databaseErrors.ts";
export { tetherErrorFormatter } from "./errorFormatter.ts";
export type { TetherErrorData, TetherErrorShape } from "./errorFormatter.ts";
