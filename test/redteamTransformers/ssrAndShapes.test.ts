/**
 * SSR (dehydrate on the server through superjson, hydrate into the client core's QueryClient, then
 * keep live), nested relations with Dates, Tether's live envelope shape inside ordinary data, and
 * huge values.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { QueryClient, dehydrate, hydrate } from "@tanstack/query-core";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

describe("ssr, shapes, huge values (pglite)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer("pglite", { transformer: superjson });
    for (let i = 0; i < 3; i++) await h.store.db.reading.create({ data: { id: `s${i}`, sensor: "ssr", takenAt: new Date(i * 1000), count: BigInt(i), amount: "1.25", raw: new Uint8Array([i]) } });
    const u = await h.store.db.user.create({ data: { email: "a@x.dev", name: "A" } });
    const p = await h.store.db.project.create({ data: { id: "p1", name: "P", ownerId: u.id } });
    const t = await h.store.db.task.create({ data: { id: "t1", projectId: p.id, title: "T", position: 1 } });
    await h.store.db.attachment.create({ data: { id: "a1", taskId: t.id, name: "f", data: new Uint8Array([7, 7]) } });
  });
  afterAll(async () => { await h?.close(); });

  it("SSR: dehydrate through superjson, hydrate into client.queryClient, stay live and typed", async () => {
    const caller = h.router.createCaller({ user: null });
    const server = new QueryClient();
    const queryKey = [["readings", "list"], { input: { sensor: "ssr" }, type: "query" }];
    await server.prefetchQuery({ queryKey, queryFn: () => caller.readings.list({ sensor: "ssr" }) });
    const html = JSON.stringify(dehydrate(server, { serializeData: superjson.serialize }));
    const c = makeClient(h.url, "ws", superjson);
    hydrate(c.queryClient, JSON.parse(html), { defaultOptions: { deserializeData: superjson.deserialize } } as any);
    const first = c.queryClient.getQueryData(queryKey) as any[];
    expect(first[0].takenAt).toBeInstanceOf(Date);
    expect(typeof first[0].count).toBe("bigint");
    const w = watch<any[]>(c, "readings.list", { sensor: "ssr" });
    await waitFor("live", () => w.statuses.includes("live"));
    await h.store.db.reading.update({ where: { id: "s1" }, data: { count: 77n } });
    await waitFor("patched", () => w.last()?.[1]?.count === 77n);
    const v = w.last()!;
    w.stop(); await c.close();
    expect(v.every((r) => r.takenAt instanceof Date && typeof r.count === "bigint" && r.raw instanceof Uint8Array)).toBe(true);
  });

  for (const transport of ["ws", "sse"] as const) {
    it(`${transport}: nested relation (project → tasks → attachments Bytes): a Date-only change of a nested row arrives typed`, async () => {
      const c = makeClient(h.url, transport, superjson);
      const w = watch<any>(c, "projects.withTasks", { id: "p1" });
      await waitFor("full", () => w.last()?.tasks?.length === 1);
      await h.store.db.task.update({ where: { id: "t1" }, data: { title: "T2-" + transport } });
      await waitFor("nested change", () => w.last()?.tasks?.[0]?.title === "T2-" + transport);
      const v = w.last();
      w.stop(); await c.close();
      expect(v.createdAt).toBeInstanceOf(Date);
      expect(v.tasks[0].updatedAt).toBeInstanceOf(Date);
      expect(v.tasks[0].attachments[0].data).toBeInstanceOf(Uint8Array);
    });
  }

  it("ordinary data shaped like Tether's live envelope is returned as is by a query", async () => {
    const c = makeClient(h.url, "ws", superjson);
    const spoof = { $tetherLive: { kind: "full", version: 1, position: "1:" }, part: "data", value: { json: [1], meta: undefined } };
    const viaHttp = await c.trpc.readings.spoof.query(spoof);
    const w = watch<any>(c, "readings.spoof", spoof);
    await waitFor("live value", () => w.last() !== undefined || w.errors.length > 0, 8000).catch(() => undefined);
    const viaLive = w.last();
    console.log(JSON.stringify({ viaHttp, viaLive, errors: w.errors.map(String) }));
    w.stop(); await c.close();
    expect(viaHttp).toEqual(spoof);
    expect(viaLive).toEqual(spoof);
  });

  for (const transport of ["ws", "sse"] as const) {
    it(`${transport}: a huge live value (20k rows, ~20 MB) arrives typed or fails clearly`, async () => {
      const c = makeClient(h.url, transport, superjson);
      const w = watch<any[]>(c, "readings.big", { n: 20_000, size: 1000 });
      await waitFor("value or error", () => (w.last()?.length ?? 0) > 0 || w.errors.length > 0, 60_000).catch(() => undefined);
      const v = w.last();
      console.log(transport, "huge", v?.length, w.errors.map(String), [...new Set(w.statuses)]);
      w.stop(); await c.close();
      expect(v?.length).toBe(20_000);
      expect(typeof v![19_999].n).toBe("bigint");
    }, 120_000);
  }
});
