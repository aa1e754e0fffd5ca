/**
 * A transformer whose serialize throws on one result (a value it cannot write). The live query
 * holding it must end with a clear error; other live queries on the same server, sharing the
 * reactor, must keep working; the server must keep serving. Also: a live query with a Date input.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { engines } from "../support/databases.ts";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

const containsPoison = (v: any, d = 0): boolean =>
  d < 8 && (v === "poison" || (v && typeof v === "object" && !(v instanceof Date) && Object.values(v).some((x) => containsPoison(x, d + 1))));
let poisonCalls = 0;
const picky = {
  serialize: (v: any) => {
    if (containsPoison(v)) poisonCalls++;
    if (containsPoison(v)) throw new Error("picky transformer cannot serialize poison");
    return superjson.serialize(v);
  },
  deserialize: (v: any) => superjson.deserialize(v),
};

for (const engine of engines) {
  describe(`throwing transformer (${engine})`, () => {
    let h: Harness;
    beforeAll(async () => { h = await startServer(engine, { transformer: picky }); });
    afterAll(async () => { await h?.close(); });

    for (const transport of ["ws", "sse"] as const) {
      it(`${transport}: a result the transformer cannot serialize ends that subscription clearly; others stay live`, async () => {
        const c = makeClient(h.url, transport, superjson);
        const sensor = `ok-${transport}`;
        const bad = watch<any[]>(c, "readings.list", { sensor: "poison" });
        const good = watch<any[]>(c, "readings.list", { sensor });
        await waitFor("both live", () => bad.statuses.includes("live") && good.statuses.includes("live"));
        await h.store.db.reading.create({ data: { sensor: "poison", takenAt: new Date(0), count: 1n, amount: "1" } });
        const calls0 = poisonCalls;
        await waitFor("poisoned subscription errors", () => bad.errors.length > 0 || bad.statuses.includes("error"), 10_000).catch(() => undefined);
        // if the client retries instead, the server re-serializes the poison again and again
        const retried = await waitFor("the poisoned result re-serialized 4 more times", () => poisonCalls - calls0 >= 5, 15_000).then(() => true, () => false);
        await h.store.db.reading.create({ data: { sensor, takenAt: new Date(0), count: 2n, amount: "2" } });
        await waitFor("other subscription still live", () => good.last()?.length === 1, 10_000).catch(() => undefined);
        const q = await c.trpc.readings.list.query({ sensor }).then((r: any) => r.length, (e: any) => `error ${e.data?.code}`);
        const report = { bad: { statuses: [...new Set(bad.statuses)], errors: bad.errors.map((e: any) => `${e?.data?.code} ${e?.message}`) }, good: good.last()?.length, q, retried, poisonSerializations: poisonCalls - calls0 };
        console.log(transport, JSON.stringify(report));
        bad.stop(); good.stop(); await c.close();
        await h.store.db.reading.deleteMany({ where: { sensor: "poison" } });
        expect(report.good).toBe(1);
        expect(report.q).toBe(1);
        expect(report.retried).toBe(false);
        expect(report.bad.errors.length).toBeGreaterThan(0);
        expect(report.bad.errors.join()).not.toMatch(/^undefined /);
      });
    }

    it("live query with a Date input (superjson both sides)", async () => {
      const c = makeClient(h.url, "ws", superjson);
      await h.store.db.reading.create({ data: { id: "d1", sensor: "dates", takenAt: new Date("2020-01-01T00:00:00Z"), count: 1n, amount: "1" } });
      const w = watch<any[]>(c, "readings.since", { sensor: "dates", since: new Date("2019-06-01T00:00:00Z") });
      await waitFor("full", () => w.last()?.length === 1 || w.errors.length > 0);
      await h.store.db.reading.create({ data: { id: "d2", sensor: "dates", takenAt: new Date("2021-01-01T00:00:00Z"), count: 2n, amount: "1" } });
      await h.store.db.reading.create({ data: { id: "d0", sensor: "dates", takenAt: new Date("2018-01-01T00:00:00Z"), count: 0n, amount: "1" } });
      await waitFor("one more", () => w.last()?.length === 2 || w.errors.length > 0);
      const v = w.last();
      console.log("dates", w.errors.map(String), v?.map((r: any) => r.id));
      w.stop(); await c.close();
      expect(v?.map((r: any) => r.id)).toEqual(["d1", "d2"]);
    });
  });
}
