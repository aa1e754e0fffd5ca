/**
 * Mismatched transformers through the client core, on the given transports: whatever happens, it
 * must be clear — no hang, no crash, an error that says what is wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

export const outcome = async (p: Promise<unknown>, ms = 8000) =>
  Promise.race([
    p.then((v) => ({ ok: true as const, v }), (e) => ({ ok: false as const, code: e?.data?.code ?? e?.shape?.data?.code, message: String(e?.message) })),
    new Promise((resolve) => setTimeout(() => resolve({ hang: true }), ms)),
  ]);

export function mismatchCases(transports: readonly ("ws" | "sse")[]): void {
  describe("server superjson, client without a transformer", () => {
    let h: Harness;
    beforeAll(async () => { h = await startServer("pglite", { transformer: superjson }); await h.store.db.reading.create({ data: { id: "m1", sensor: "mm", takenAt: new Date(0), count: 1n, amount: "1.5" } }); });
    afterAll(async () => { await h?.close(); });
    for (const transport of transports) {
      it(`${transport}: query, mutation and live`, async () => {
        const c = makeClient(h.url, transport);
        const q = await outcome(c.trpc.readings.list.query({ sensor: "mm" }));
        const m = await outcome(c.trpc.readings.echoMut.mutate({ at: new Date(0) as any, n: "1" as any }));
        const w = watch<any>(c, "readings.list", { sensor: "mm" });
        await waitFor("a status other than connecting", () => w.statuses.some((s) => s !== "connecting") || w.errors.length > 0, 8000).catch(() => undefined);
        const seen = { q, m, statuses: [...new Set(w.statuses)], errors: w.errors.map((e: any) => `${e?.data?.code} ${e?.message}`), last: w.last() };
        console.log(transport, JSON.stringify(seen, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)).slice(0, 1500));
        w.stop(); await c.close();
        // Whatever happens, it must be clear: no hang, an error that says what is wrong.
        expect((q as any).hang).toBeUndefined();
        expect((m as any).hang).toBeUndefined();
        expect(seen.statuses).toContain("error");
        expect(seen.errors.join()).toMatch(/transformer/i);
      });
    }
  });

  describe("server without a transformer, client superjson", () => {
    let h: Harness;
    beforeAll(async () => { h = await startServer("pglite"); await h.store.db.reading.create({ data: { id: "m2", sensor: "mm", takenAt: new Date(0), count: 1n, amount: "1.5" } }); });
    afterAll(async () => { await h?.close(); });
    for (const transport of transports) {
      it(`${transport}: query, mutation and live`, async () => {
        const c = makeClient(h.url, transport, superjson);
        const q = await outcome(c.trpc.readings.noCount.query({ sensor: "mm" }));
        const m = await outcome(c.trpc.readings.echoMut.mutate({ at: new Date(0), n: 1n } as any));
        const w = watch<any>(c, "readings.noCount", { sensor: "mm" });
        await waitFor("a status other than connecting", () => w.statuses.some((s) => s !== "connecting") || w.errors.length > 0, 8000).catch(() => undefined);
        const seen = { q, m, statuses: [...new Set(w.statuses)], errors: w.errors.map((e: any) => `${e?.data?.code} ${e?.message}`), last: w.last() };
        console.log(transport, JSON.stringify(seen, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)).slice(0, 1500));
        w.stop(); await c.close();
        expect((q as any).hang).toBeUndefined();
        expect((m as any).hang).toBeUndefined();
        expect(seen.statuses).toContain("error");
        expect(seen.errors.join()).toMatch(/transformer/i);
      });
    }
  });
}
