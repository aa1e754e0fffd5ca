/**
 * The app's own tRPC links composed with Tether's, with superjson: a link that records (does it see
 * typed inputs and typed live messages?), one that rewrites inputs (query, mutation, $live), one
 * that throws (on $live: a clear error, no hang, no crash), and retryLink.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { retryLink, type TRPCLink } from "@trpc/client";
import { observable } from "@trpc/server/observable";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

describe("app links with superjson (pglite)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer("pglite", { transformer: superjson });
    await h.store.db.reading.create({ data: { id: "l1", sensor: "real", takenAt: new Date(0), count: 3n, amount: "1.5" } });
  });
  afterAll(async () => { await h?.close(); });

  for (const transport of ["ws", "sse"] as const) {
    it(`${transport}: recording and rewriting links see typed values; $live input can be rewritten`, async () => {
      const seen: { path: string; type: string; inputDate: boolean; results: any[] }[] = [];
      const recorder: TRPCLink<any> = () => ({ op, next }) =>
        observable((observer) => {
          const entry = { path: op.path, type: op.type, inputDate: hasDate(op.input), results: [] as any[] };
          seen.push(entry);
          return next(op).subscribe({
            next: (v) => { entry.results.push(v.result); observer.next(v); },
            error: (e) => observer.error(e),
            complete: () => observer.complete(),
          });
        });
      const rewrite: TRPCLink<any> = () => ({ op, next }) => {
        const swap = (x: any): any => (x && typeof x === "object" ? (x.sensor === "alias" ? { ...x, sensor: "real" } : Object.fromEntries(Object.entries(x).map(([k, v]) => [k, k === "input" ? swap(v) : v]))) : x);
        return next({ ...op, input: swap(op.input) });
      };
      const c = makeClient(h.url, transport, superjson, { links: [recorder, rewrite] });
      const q = await (c.trpc as any).readings.list.query({ sensor: "alias" });
      const e = await c.trpc.readings.echo.query({ at: new Date(0), n: 5n });
      const w = watch<any[]>(c, "readings.list", { sensor: "alias" });
      await waitFor("live via rewritten input", () => w.last()?.length === 1 || w.errors.length > 0, 8000).catch(() => undefined);
      await h.store.db.reading.update({ where: { id: "l1" }, data: { count: 4n } });
      await waitFor("patch", () => w.last()?.[0]?.count === 4n, 8000).catch(() => undefined);
      const live = seen.find((s) => s.path === "$live");
      const liveData = live?.results.filter((r: any) => r?.type === "data" || r?.data).map((r: any) => r.data ?? r) ?? [];
      console.log(transport, JSON.stringify({ q: q.length, e, paths: seen.map((s) => `${s.type}:${s.path}`), liveData }, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)).slice(0, 1500));
      w.stop(); await c.close();
      expect(q.length).toBe(1);
      expect(e.isDate).toBe(true);
      expect(seen.find((s) => s.path === "readings.echo")?.inputDate).toBe(true);
      expect(w.last()?.[0]?.count).toBe(4n);
      // the app's link sees live messages (not Tether's envelope), with typed rows
      expect(JSON.stringify(liveData, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))).not.toContain("$tetherLive");
    });

    it(`${transport}: a link that throws on $live gives a clear error, no hang, no crash`, async () => {
      const thrower: TRPCLink<any> = () => ({ op, next }) => {
        if (op.path === "$live") throw new Error("app link refused $live");
        return next(op);
      };
      const c = makeClient(h.url, transport, superjson, { links: [thrower] });
      const q = await (c.trpc as any).readings.list.query({ sensor: "real" });
      let thrownByWatch: unknown;
      let w: ReturnType<typeof watch<any[]>> | undefined;
      try {
        w = watch<any[]>(c, "readings.list", { sensor: "real" });
      } catch (error) {
        thrownByWatch = error; // the app's link error escapes watchQuery synchronously
      }
      if (w) await waitFor("error status", () => w!.errors.length > 0 || w!.statuses.includes("error"), 8000).catch(() => undefined);
      console.log(transport, "thrower", JSON.stringify({ thrownByWatch: String(thrownByWatch), statuses: w?.statuses, errors: w?.errors.map((x: any) => String(x?.message ?? x)) }));
      w?.stop(); await c.close();
      expect(q.length).toBe(1);
      expect(String(thrownByWatch ?? "")).toBe("");
      expect(w!.errors.map((x: any) => String(x?.message ?? x)).join()).toContain("app link refused $live");
    });

    it(`${transport}: retryLink retries a failing $live subscription start without breaking types`, async () => {
      let fails = 2;
      const flaky: TRPCLink<any> = () => ({ op, next }) =>
        observable((observer) => {
          if (op.path === "$live" && fails > 0) { fails--; observer.error(new Error("flaky") as any); return () => undefined; }
          return next(op).subscribe(observer);
        });
      const c = makeClient(h.url, transport, superjson, { links: [retryLink({ retry: (o) => o.attempts < 5 }), flaky] });
      const w = watch<any[]>(c, "readings.list", { sensor: "real" });
      await waitFor("live after retries", () => w.last()?.length === 1 || w.errors.length > 0, 10_000).catch(() => undefined);
      console.log(transport, "retry", JSON.stringify({ statuses: w.statuses, errors: w.errors.map(String), n: w.last()?.length, t: typeof w.last()?.[0]?.count }));
      w.stop(); await c.close();
      expect(typeof w.last()?.[0]?.count).toBe("bigint");
    });
  }
});

function hasDate(v: any): boolean {
  if (v instanceof Date) return true;
  if (v && typeof v === "object") return Object.values(v).some(hasDate);
  return false;
}
