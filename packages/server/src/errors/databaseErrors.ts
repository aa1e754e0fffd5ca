import { TRPCError } from "@trpc/server";

/**
 * The one answer for a write whose foreign key names a row the caller cannot see: the row does
 * not exist (Postgres refused the key), or it exists but the caller's policy cannot read it (see
 * `procedures/referencedRows.ts`). Both are NOT_FOUND with this message, so a caller cannot tell
 * "missing" from "someone else's".
 */
export const REFERENCE_NOT_FOUND = "a row this write refers to does not exist";

/** Messages of the database errors Tether maps: what the client sees, never Prisma's text. */
const MESSAGES = {
  unique: "a row with the same unique value already exists",
  stillReferenced: "the row is still referenced by other rows",
  tooLong: "a value is too long for its column",
  missingValue: "a required value is missing",
  invalidValue: "a value is not valid for its column",
  invalidArguments: "invalid arguments for a database operation",
  conflict: "the write conflicted with a concurrent one; retry it",
  busy: "the database is busy: the mutation could not start in time; retry it shortly",
  txTimeout: "the mutation ran longer than its transaction allows; retry it",
  unavailable: "the database is unavailable; retry shortly",
  internal: "internal server error",
} as const;

/** What Prisma (known request errors) and its driver adapters (raw Postgres errors) tell about a failure. */
interface DatabaseFault {
  /** Prisma's code (`P2002`). */
  prisma?: string;
  /** Postgres SQLSTATE (`23505`), from the driver adapter. */
  sqlState?: string;
  /** The driver adapter's classification (`UniqueConstraintViolation`). */
  kind?: string;
  /** Postgres' own message (to tell an insert's FK violation from a delete's). */
  pgMessage?: string;
  modelName?: string;
  prismaMessage: string;
}

const PRISMA_ERROR_NAMES = new Set([
  "PrismaClientKnownRequestError",
  "PrismaClientUnknownRequestError",
  "PrismaClientValidationError",
  "PrismaClientInitializationError",
  "PrismaClientRustPanicError",
  "DriverAdapterError",
]);

type Obj = Record<string, unknown>;
const isObj = (value: unknown): value is Obj => typeof value === "object" && value !== null;
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

/**
 * A Prisma or driver-adapter error, read by name and fields rather than `instanceof`: the app's
 * generated client carries its own copies of Prisma's classes.
 */
function faultOf(error: unknown): DatabaseFault | null {
  if (!(error instanceof Error) || !PRISMA_ERROR_NAMES.has(error.name)) return null;
  const e = error as Error & Obj;
  const meta = isObj(e.meta) ? e.meta : {};
  // Postgres through adapter-pg: Prisma's code plus meta.driverAdapterError.cause; PGlite's adapter
  // throws the DriverAdapterError itself, its cause a raw Postgres error ({ kind: "postgres", code }).
  const adapterError = error.name === "DriverAdapterError" ? e : isObj(meta.driverAdapterError) ? meta.driverAdapterError : null;
  const cause = adapterError && isObj(adapterError.cause) ? adapterError.cause : {};
  const kind = str(cause.kind);
  return {
    prisma: str(e.code),
    sqlState: str(cause.originalCode) ?? (kind === "postgres" ? str(cause.code) : undefined),
    kind: kind === "postgres" ? undefined : kind,
    pgMessage: str(cause.originalMessage) ?? str(cause.message),
    modelName: str(meta.modelName),
    prismaMessage: error.message,
  };
}

export interface ClientErrorOptions {
  /** A database failure the client may retry (busy, conflict): `data.retryable` in the error shape. */
  retryable?: boolean;
}

/** A TRPCError Tether made from a database error; `retryable` tells the formatter. */
export class MappedDatabaseError extends TRPCError {
  readonly retryable: boolean;
  constructor(code: TRPCError["code"], message: string, cause: unknown, options: ClientErrorOptions = {}) {
    super({ code, message, cause });
    this.retryable = options.retryable ?? false;
  }
}

function classify(fault: DatabaseFault, cause: unknown): MappedDatabaseError {
  const { prisma, sqlState, kind } = fault;
  const is = (code: string, state?: string, adapterKind?: string) =>
    prisma === code || (state !== undefined && sqlState === state) || (adapterKind !== undefined && kind === adapterKind);
  const make = (code: TRPCError["code"], message: string, retryable = false) => new MappedDatabaseError(code, message, cause, { retryable });

  if (is("P2002", "23505", "UniqueConstraintViolation")) return make("CONFLICT", MESSAGES.unique);
  if (is("P2003", "23503", "ForeignKeyConstraintViolation")) {
    // "update or delete on table … violates foreign key constraint … on table …": a parent still
    // has children (onDelete: Restrict). Otherwise the written row names a missing one.
    return /^update or delete on table/i.test(fault.pgMessage ?? "")
      ? make("CONFLICT", MESSAGES.stillReferenced)
      : make("NOT_FOUND", REFERENCE_NOT_FOUND);
  }
  if (prisma === "P2025") return make("NOT_FOUND", fault.modelName ? `no such ${fault.modelName}` : "no such row");
  if (prisma === "P2015" || prisma === "P2018") return make("NOT_FOUND", REFERENCE_NOT_FOUND);
  if (is("P2000", "22001", "LengthMismatch")) return make("BAD_REQUEST", MESSAGES.tooLong);
  if (is("P2011", "23502", "NullConstraintViolation")) return make("BAD_REQUEST", MESSAGES.missingValue);
  if (is("P2004", "23514") || ["P2005", "P2006", "P2007", "P2020", "P2023"].includes(prisma ?? "") || /^22/.test(sqlState ?? "")) {
    return make("BAD_REQUEST", MESSAGES.invalidValue);
  }
  if (is("P2034", "40001", "TransactionWriteConflict") || sqlState === "40P01") return make("CONFLICT", MESSAGES.conflict, true);
  if (prisma === "P2028") {
    return /unable to start a transaction/i.test(fault.prismaMessage)
      ? make("SERVICE_UNAVAILABLE", MESSAGES.busy, true)
      : make("SERVICE_UNAVAILABLE", MESSAGES.txTimeout, true);
  }
  if (prisma === "P2024" || sqlState === "53300" || sqlState === "57014") return make("SERVICE_UNAVAILABLE", MESSAGES.busy, true);
  if (isUnavailable(fault)) return make("SERVICE_UNAVAILABLE", MESSAGES.unavailable, true);
  if (cause instanceof Error && cause.name === "PrismaClientValidationError") return make("BAD_REQUEST", MESSAGES.invalidArguments);
  // Anything else from the database layer: a server fault, its text (queries, schema) kept out.
  return make("INTERNAL_SERVER_ERROR", MESSAGES.internal);
}

/** Prisma's codes for a database it cannot reach or lost the connection to. */
const UNREACHABLE_PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017"]);
/** Driver-adapter kinds for the same. */
const UNREACHABLE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TooManyConnections"]);

/**
 * The database is down, restarting or unreachable (not the query's fault): Prisma's P1xxx
 * connection codes, the adapter's connection kinds, SQLSTATE class 08 (connection exception) and
 * 57P01–57P03 (administrator shutdown, crash shutdown, cannot connect now), or a connection the
 * driver saw end. Clients may retry; a live query retries with backoff (see reactor/retry.ts).
 */
function isUnavailable(fault: DatabaseFault): boolean {
  if (fault.prisma && UNREACHABLE_PRISMA_CODES.has(fault.prisma)) return true;
  if (fault.kind && UNREACHABLE_KINDS.has(fault.kind)) return true;
  if (fault.sqlState && (/^08/.test(fault.sqlState) || /^57P0[123]$/.test(fault.sqlState))) return true;
  return /connection terminated|can't reach database server|ECONNREFUSED|ECONNRESET/i.test(`${fault.pgMessage ?? ""} ${fault.prismaMessage}`);
}

/** True when `error` (or the error tRPC wrapped) says the database is unavailable for now. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const mapped = toClientError(error);
  return mapped instanceof MappedDatabaseError && mapped.code === "SERVICE_UNAVAILABLE" && mapped.retryable;
}

/**
 * The error a client should see for `error`: a Prisma / driver error (directly, or as the cause
 * tRPC wrapped it in) becomes a typed TRPCError with Tether's message (Prisma's text names
 * tables, constraints and source lines); anything else is returned as it is.
 */
export function toClientError<E>(error: E): E | MappedDatabaseError {
  if (error instanceof MappedDatabaseError) return error;
  const direct = faultOf(error);
  if (direct) return classify(direct, error);
  if (error instanceof TRPCError && error.code === "INTERNAL_SERVER_ERROR") {
    const inner = faultOf(error.cause);
    if (inner) return classify(inner, error.cause);
    if (isLostConnection(error.cause)) return new MappedDatabaseError("SERVICE_UNAVAILABLE", MESSAGES.unavailable, error.cause, { retryable: true });
  }
  if (isLostConnection(error)) return new MappedDatabaseError("SERVICE_UNAVAILABLE", MESSAGES.unavailable, error, { retryable: true });
  return error;
}

/**
 * node-postgres' own errors for a connection that died under a call (not wrapped by Prisma when
 * they come from Tether's raw SQL or a transaction's connection): the database is restarting.
 */
function isLostConnection(error: unknown): boolean {
  return (
    error instanceof Error &&
    error.name === "Error" &&
    /^(Connection terminated unexpectedly|Client has encountered a connection error and is not queryable|Connection terminated)$/.test(error.message)
  );
}
