/**
 * Decimal registered on a SuperJSON instance on both sides (as docs/transformers.md shows), and
 * extreme values (BigInt min/max, dates before 1970 and after 9999, Decimal with every digit): a
 * change of only that field must reach live subscribers typed, over WS and SSE.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SuperJSON } from "superjson";
import { Prisma } from "../../generated/prisma/client.ts";
import { engines } from "../support/databases.ts";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

function makeSj() {
  const sj = new SuperJSON();
  sj.registerCustom<any, string>(
    { isApplicable: (v): v is any => Prisma.Decimal.isDecimal(v), serialize: (v) => v.toJSON(), deserialize: (v) => new Prisma.Decimal(v) },
    "decimal.js",
  );
  return sj;
}

for (const engine of engines) {
  describe(`Decimal registered and extreme values (${engine})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startServer(engine, { transformer: makeSj() });
      await h.store.db.reading.create({ data: { id: "x1", sensor: "ext", takenAt: new Date(0), count: 0n, amount: "0" } });
    });
    afterAll(async () => { await h?.close(); });
    for (const transport of ["ws", "sse"] as const) {
      it(`${transport}: single-field changes arrive typed`, async () => {
        const c = makeClient(h.url, transport, makeSj());
        const w = watch<any[]>(c, "readings.list", { sensor: "ext" });
        await waitFor("full", () => w.last()?.length === 1);
        const steps: [string, any, (r: any) => boolean][] = [
          ["amount", { amount: new Prisma.Decimal("12345678.1234") }, (r) => Prisma.Decimal.isDecimal(r.amount) && r.amount.toFixed(4) === "12345678.1234"],
          ["amount-neg", { amount: new Prisma.Decimal("-0.0001") }, (r) => Prisma.Decimal.isDecimal(r.amount) && r.amount.toFixed(4) === "-0.0001"],
          ["count-max", { count: 9223372036854775807n }, (r) => r.count === 9223372036854775807n],
          ["count-min", { count: -9223372036854775808n }, (r) => r.count === -9223372036854775808n],
          ["date-old", { takenAt: new Date("1600-02-29T12:34:56.789Z") }, (r) => r.takenAt instanceof Date && r.takenAt.toISOString() === "1600-02-29T12:34:56.789Z"],
          ["date-far", { takenAt: new Date("9999-12-31T23:59:59.999Z") }, (r) => r.takenAt instanceof Date && r.takenAt.getTime() === new Date("9999-12-31T23:59:59.999Z").getTime()],
          ["raw-empty", { raw: new Uint8Array([]) }, (r) => r.raw instanceof Uint8Array && r.raw.length === 0],
          ["raw-big", { raw: new Uint8Array(300_000).fill(255) }, (r) => r.raw instanceof Uint8Array && r.raw.length === 300_000 && r.raw[299_999] === 255],
        ];
        const failed: string[] = [];
        for (const [name, data, ok] of steps) {
          await h.store.db.reading.update({ where: { id: "x1" }, data });
          await waitFor(name, () => !!w.last()?.[0] && ok(w.last()![0]), 10_000).catch(() => {
            const r = w.last()?.[0];
            failed.push(`${name}: got ${r ? Object.entries(r).map(([k, v]: any) => `${k}=${v?.constructor?.name}:${String(v).slice(0, 40)}`).join(" ") : "nothing"}`);
          });
        }
        w.stop(); await c.close();
        expect(failed).toEqual([]);
      }, 120_000);
    }
  });
}
