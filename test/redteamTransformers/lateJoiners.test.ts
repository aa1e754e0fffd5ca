/**
 * Serialize-once caches by result identity: late joiners after patches must get the current value
 * (not a stale cached serialization), typed, over WS and SSE; and the Last-Event-ID / resume path
 * with garbage must not be a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { engines } from "../support/databases.ts";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

for (const engine of engines) {
  describe(`late joiners and resume garbage (${engine})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startServer(engine, { transformer: superjson });
      for (let i = 0; i < 4; i++) await h.store.db.reading.create({ data: { id: `j${i}`, sensor: "late", takenAt: new Date(i), count: BigInt(i), amount: "1", raw: new Uint8Array([i]) } });
    });
    afterAll(async () => { await h?.close(); });

    it("joiners after each patch see the current rows, typed", async () => {
      const clients: any[] = [];
      const watchers: any[] = [];
      const mismatches: string[] = [];
      for (let step = 0; step < 6; step++) {
        const c = makeClient(h.url, step % 2 ? "sse" : "ws", superjson);
        clients.push(c);
        const w = watch<any[]>(c, "readings.list", { sensor: "late" });
        watchers.push(w);
        const expected = (await h.store.db.reading.findMany({ where: { sensor: "late" }, orderBy: { id: "asc" } })).map((r: any) => `${r.id}:${r.count}:${r.takenAt.getTime()}:${r.raw?.[0] ?? "null"}`);
        const show = (v: any[] | undefined) => (v ?? []).map((r) => `${r.id}:${r.count}:${r.takenAt instanceof Date ? r.takenAt.getTime() : "NOT-DATE"}:${r.raw instanceof Uint8Array ? r.raw[0] : r.raw === null ? "null" : "NOT-BYTES"}`);
        await waitFor(`all ${watchers.length} watchers current at step ${step}`, () => watchers.every((x) => JSON.stringify(show(x.last())) === JSON.stringify(expected)), 10_000).catch(() => {
          watchers.forEach((x, i) => { if (JSON.stringify(show(x.last())) !== JSON.stringify(expected)) mismatches.push(`step ${step} watcher ${i}: ${show(x.last())} != ${expected}`); });
        });
        // changes of one field at a time
        const id = `j${step % 4}`;
        if (step % 3 === 0) await h.store.db.reading.update({ where: { id }, data: { count: BigInt(1000 + step) } });
        if (step % 3 === 1) await h.store.db.reading.update({ where: { id }, data: { takenAt: new Date(5000 + step) } });
        if (step % 3 === 2) await h.store.db.reading.update({ where: { id }, data: { raw: new Uint8Array([100 + step]) } });
      }
      watchers.forEach((w) => w.stop());
      await Promise.all(clients.map((c) => c.close()));
      expect(mismatches).toEqual([]);
    });

    it("SSE $live with a garbage Last-Event-ID / lastEventId is not a 500", async () => {
      const input = superjson.serialize({ path: "readings.list", input: { sensor: "late" }, lastEventId: "garbage::{}" } as any);
      const bad: string[] = [];
      for (const [name, url, headers] of [
        ["header", `${h.url}/$live?input=${encodeURIComponent(JSON.stringify(superjson.serialize({ path: "readings.list", input: { sensor: "late" } })))}`, { "last-event-id": "not-a-position;{}" }],
        ["input", `${h.url}/$live?input=${encodeURIComponent(JSON.stringify(input))}`, {}],
        ["huge", `${h.url}/$live?input=${encodeURIComponent(JSON.stringify(superjson.serialize({ path: "readings.list", input: { sensor: "late" }, lastEventId: "9".repeat(5000) } as any)))}`, {}],
      ] as const) {
        const ac = new AbortController();
        const res = await fetch(url, { headers: headers as any, signal: ac.signal });
        let body = "";
        if (res.status === 200) {
          const reader = res.body!.getReader();
          // Until the stream's first message or error (every accepted input gets one) or its end.
          while (!/event: (error|serialized-error)|"kind"/.test(body)) {
            const r = await reader.read();
            if (r.done) break;
            body += new TextDecoder().decode(r.value);
          }
        } else body = await res.text();
        ac.abort();
        console.log(name, res.status, body.slice(0, 300).replace(/\n/g, " | "));
        if (res.status >= 500 || /INTERNAL_SERVER_ERROR/.test(body)) bad.push(`${name}: ${res.status} ${body.slice(0, 200)}`);
      }
      expect(bad).toEqual([]);
    });
  });
}
