/**
 * Reconnect and resume (lastEventId) with superjson across a server restart, over WebSocket and
 * SSE: changes made while the server is down (a BigInt-only change, a Date-only change, a row in,
 * a row out) must arrive typed after the client resumes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { engines } from "../support/databases.ts";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

for (const engine of engines) {
  describe(`restart and resume with superjson (${engine})`, () => {
    let h: Harness;
    beforeAll(async () => { h = await startServer(engine, { transformer: superjson }); });
    afterAll(async () => { await h?.close(); });

    it("ws and sse clients resume typed after a server restart", async () => {
      const sensor = "rs";
      for (let i = 0; i < 5; i++) await h.store.db.reading.create({ data: { id: `r${i}`, sensor, takenAt: new Date(i * 1000), count: BigInt(i), amount: `${i}.25`, raw: new Uint8Array([i]) } });
      const cws = makeClient(h.url, "ws", superjson);
      const csse = makeClient(h.url, "sse", superjson);
      const a = watch<any[]>(cws, "readings.list", { sensor });
      const b = watch<any[]>(csse, "readings.list", { sensor });
      await waitFor("both full", () => a.last()?.length === 5 && b.last()?.length === 5);
      // change once while up (so the clients hold a position past the first full value)
      await h.store.db.reading.update({ where: { id: "r0" }, data: { count: 100n } });
      await waitFor("patched", () => a.last()?.[0]?.count === 100n && b.last()?.[0]?.count === 100n);

      await h.restart();
      // while the clients are (re)connecting
      await h.store.db.reading.update({ where: { id: "r1" }, data: { count: 9223372036854775807n } });
      await h.store.db.reading.update({ where: { id: "r2" }, data: { takenAt: new Date("2031-05-05T00:00:00Z") } });
      await h.store.db.reading.delete({ where: { id: "r3" } });
      await h.store.db.reading.create({ data: { id: "r9", sensor, takenAt: new Date(9000), count: 9n, amount: "9.75", raw: null } });

      const good = (rows: any[] | undefined) =>
        !!rows && rows.length === 5 && rows.find((r) => r.id === "r1")?.count === 9223372036854775807n &&
        rows.find((r) => r.id === "r2")?.takenAt instanceof Date && rows.find((r) => r.id === "r2").takenAt.getUTCFullYear() === 2031 &&
        !rows.some((r) => r.id === "r3") && rows.some((r) => r.id === "r9");
      await waitFor("both resumed with every change", () => good(a.last()) && good(b.last()), 30_000).catch(() => undefined);
      const types = (rows: any[] | undefined) => (rows ?? []).map((r) => [r.id, r.takenAt instanceof Date, typeof r.count, r.raw === null || r.raw instanceof Uint8Array].join(":"));
      const report = { ws: { types: types(a.last()), statuses: [...new Set(a.statuses)], errors: a.errors.map(String) }, sse: { types: types(b.last()), statuses: [...new Set(b.statuses)], errors: b.errors.map(String) } };
      console.log(JSON.stringify(report));
      a.stop(); b.stop();
      await cws.close(); await csse.close();
      expect(good(a.last())).toBe(true);
      expect(good(b.last())).toBe(true);
      for (const t of [...report.ws.types, ...report.sse.types]) expect(t).toMatch(/:true:bigint:true$/);
    });
  });
}
