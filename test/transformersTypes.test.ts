// Type tests of routers with a data transformer: checked by `npm run typecheck` (root tsc covers
// test/). With `initTether().create({ transformer })` the client's types carry Prisma's values as
// they arrive (Date, bigint); without one, tRPC's JSON types (dates as strings).
import { describe, expect, expectTypeOf, it } from "vitest";
import type { TetherClient } from "@tether/client";
import type { buildReadingsApp, ReadingsRouter } from "./fixtures/readingsApp.ts";

type PlainRouter = ReturnType<typeof buildReadingsApp>["router"];

/** Never called: it exists for the type checker. */
function typed(client: TetherClient<ReadingsRouter>, plain: TetherClient<PlainRouter>) {
  type Row = Awaited<ReturnType<typeof client.trpc.readings.bySensor.query>>[number];
  expectTypeOf<Row["takenAt"]>().toEqualTypeOf<Date>();
  expectTypeOf<Row["count"]>().toEqualTypeOf<bigint>();
  expectTypeOf<Row["raw"]>().toEqualTypeOf<Uint8Array<ArrayBuffer> | null>();

  type PlainRow = Awaited<ReturnType<typeof plain.trpc.readings.withoutCount.query>>[number];
  expectTypeOf<PlainRow["takenAt"]>().toEqualTypeOf<string>();

  // Inputs are the procedure's own: a Date and a bigint go as they are.
  void client.trpc.readings.add.mutate({ sensor: "s", takenAt: new Date(), count: 1n, amount: "1" });
  // @ts-expect-error a date input is a Date, not its string
  void client.trpc.readings.add.mutate({ sensor: "s", takenAt: "2026-01-01", count: 1n, amount: "1" });
}

describe("transformer types", () => {
  it("are checked by tsc (this file compiles)", () => {
    expect(typeof typed).toBe("function");
  });
});
