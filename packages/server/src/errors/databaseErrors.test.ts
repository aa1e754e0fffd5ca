// How database failures read to clients. The shapes are the ones Prisma 6.19 and its driver
// adapters throw (errors are recognised by name and fields, as the app's generated client carries
// its own copies of Prisma's classes); test/errorMapping.test.ts checks the common ones end to end.
import { describe, expect, it } from "vitest";
import { isDatabaseUnavailable, MappedDatabaseError, toClientError } from "./databaseErrors.ts";

const prismaError = (code: string, message = "…") => Object.assign(new Error(message), { name: "PrismaClientKnownRequestError", code, meta: {} });
const adapterError = (cause: Record<string, unknown>) => Object.assign(new Error("driver"), { name: "DriverAdapterError", cause });

describe("a database that is down or restarting", () => {
  it.each([
    ["Prisma P1001 (cannot reach the server)", prismaError("P1001", "Can't reach database server at 127.0.0.1:5432")],
    ["Prisma P1017 (server closed the connection)", prismaError("P1017")],
    ["adapter kind DatabaseNotReachable", adapterError({ kind: "DatabaseNotReachable" })],
    ["adapter kind ConnectionClosed", adapterError({ kind: "ConnectionClosed" })],
    ["SQLSTATE 57P01 (terminating connection due to administrator command)", adapterError({ kind: "postgres", code: "57P01", message: "terminating connection due to administrator command" })],
    ["SQLSTATE 08006 (connection failure)", adapterError({ kind: "postgres", code: "08006" })],
  ])("%s is SERVICE_UNAVAILABLE, retryable, without the driver's text", (_, error) => {
    const mapped = toClientError(error);
    expect(mapped).toBeInstanceOf(MappedDatabaseError);
    expect(mapped).toMatchObject({ code: "SERVICE_UNAVAILABLE", retryable: true, message: "the database is unavailable; retry shortly" });
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it("node-postgres' own lost-connection errors are SERVICE_UNAVAILABLE too (raw SQL, a transaction's connection)", () => {
    for (const message of ["Connection terminated unexpectedly", "Client has encountered a connection error and is not queryable"]) {
      expect(toClientError(new Error(message))).toMatchObject({ code: "SERVICE_UNAVAILABLE", retryable: true });
    }
  });

  it("a client's mistake or an unknown fault is not 'unavailable'", () => {
    expect(isDatabaseUnavailable(prismaError("P2002"))).toBe(false);
    expect(isDatabaseUnavailable(adapterError({ kind: "postgres", code: "23503" }))).toBe(false);
    expect(isDatabaseUnavailable(new Error("boom after write"))).toBe(false); // an app's own error keeps its message
    expect(toClientError(prismaError("P9999"))).toMatchObject({ code: "INTERNAL_SERVER_ERROR", message: "internal server error" });
  });
});
