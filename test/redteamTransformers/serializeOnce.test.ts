/**
 * Serialize-once, measured with a counting custom transformer (not superjson itself: a tagged
 * transformer of our own), and end-to-end types through it, with many subscribers of one query
 * over WebSocket and SSE, including {input, output} form.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engines } from "../support/databases.ts";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

/** A transformer that is not superjson: tags Dates, BigInts and bytes. */
function tag(v: any): any {
  if (v instanceof Date) return { __d: v.toISOString() };
  if (typeof v === "bigint") return { __b: v.toString() };
  if (v instanceof Uint8Array) return { __u: Array.from(v) };
  if (Array.isArray(v)) return v.map(tag);
  if (v && typeof v === "object") {
    if (typeof v.toJSON === "function") return v.toJSON();
    const o: any = {};
    for (const k of Object.keys(v)) o[k] = tag(v[k]);
    return o;
  }
  return v;
}
function untag(v: any): any {
  if (Array.isArray(v)) return v.map(untag);
  if (v && typeof v === "object") {
    if (typeof v.__d === "string") return new Date(v.__d);
    if (typeof v.__b === "string") return BigInt(v.__b);
    if (Array.isArray(v.__u)) return new Uint8Array(v.__u);
    const o: any = {};
    for (const k of Object.keys(v)) o[k] = untag(v[k]);
    return o;
  }
  return v;
}
function hasRawDate(v: any, depth = 0): boolean {
  if (depth > 8) return false;
  if (v instanceof Date) return true;
  if (Array.isArray(v)) return v.some((x) => hasRawDate(x, depth + 1));
  if (v && typeof v === "object") return Object.values(v).some((x) => hasRawDate(x, depth + 1));
  return false;
}

const counts = { serializeWithRows: 0, serializeAll: 0 };
const counting = {
  serialize: (v: any) => {
    counts.serializeAll++;
    if (hasRawDate(v)) counts.serializeWithRows++;
    return tag(v);
  },
  deserialize: (v: any) => untag(v),
};
const clientTransformer = { serialize: tag, deserialize: untag };

const N = 12;

for (const engine of engines) {
  for (const form of ["single", "inputOutput"] as const) {
    describe(`${N} subscribers, counting custom transformer, ${form} (${engine})`, () => {
      let h: Harness;
      beforeAll(async () => {
        h = await startServer(engine, {
          transformer: form === "single" ? counting : { input: counting, output: counting },
        });
        for (let i = 0; i < 50; i++) {
          await h.store.db.reading.create({ data: { id: `c${String(i).padStart(3, "0")}`, sensor: "many", takenAt: new Date(i * 1000), count: BigInt(i), amount: `${i}.5`, raw: new Uint8Array([i]) } });
        }
      });
      afterAll(async () => { await h?.close(); });

      it("each result and each patch is serialized once, and arrives typed everywhere", async () => {
        const clients = Array.from({ length: N }, (_, i) =>
          makeClient(h.url, i % 2 ? "sse" : "ws", form === "single" ? clientTransformer : { input: clientTransformer, output: clientTransformer }),
        );
        const before = counts.serializeWithRows;
        const ws = clients.map((c) => watch<any[]>(c, "readings.list", { sensor: "many" }));
        await waitFor("all full", () => ws.every((w) => w.last()?.length === 50), 30_000);
        const afterFull = counts.serializeWithRows;
        // one update that only changes a BigInt
        await h.store.db.reading.update({ where: { id: "c007" }, data: { count: 9007199254740993n } });
        await waitFor("all patched", () => ws.every((w) => w.last()?.[7]?.count === 9007199254740993n), 30_000);
        const afterPatch1 = counts.serializeWithRows;
        // one update that only changes a Date
        await h.store.db.reading.update({ where: { id: "c008" }, data: { takenAt: new Date("2030-01-01T00:00:00Z") } });
        await waitFor("all patched date", () => ws.every((w) => w.last()?.[8]?.takenAt instanceof Date && w.last()![8].takenAt.getUTCFullYear() === 2030), 30_000);
        const afterPatch2 = counts.serializeWithRows;
        const rowTypes = ws.map((w) => { const r = w.last()![3]; return [r.takenAt instanceof Date, typeof r.count, r.raw instanceof Uint8Array].join(); });
        console.log({ full: afterFull - before, patch1: afterPatch1 - afterFull, patch2: afterPatch2 - afterPatch1, all: counts.serializeAll });
        for (const w of ws) w.stop();
        await Promise.all(clients.map((c) => c.close()));
        expect(new Set(rowTypes)).toEqual(new Set(["true,bigint,true"]));
        expect(afterPatch1 - afterFull).toBe(1);
        expect(afterPatch2 - afterPatch1).toBe(1);
        // full values: one per result object (late joiners may share it)
        expect(afterFull - before).toBeLessThanOrEqual(2);
      });
    });
  }
}
