/**
 * Several users, a row-level read policy, superjson: the same query and input subscribed by two
 * users must give each their own rows (the serialize-once cache must not share a result across
 * users), typed, over WS and SSE, including late joiners and single-field changes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { engines } from "../support/databases.ts";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";

function userOf(opts: any): string | null {
  const fromParams = opts?.info?.connectionParams?.user;
  const fromHeader = opts?.req?.headers?.["x-user"];
  const fromUrl = (() => { try { return new URL(opts?.req?.url ?? "", "http://x").searchParams.get("user"); } catch { return null; } })();
  return fromParams ?? fromHeader ?? fromUrl ?? null;
}

for (const engine of engines) {
  describe(`several users with a read policy (${engine})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startServer(engine, {
        transformer: superjson,
        createContext: (opts) => ({ user: userOf(opts) ? { id: userOf(opts) } : null }),
        policies: { reading: { read: (ctx: any) => (ctx.user ? { id: { startsWith: `${ctx.user.id}-` } } : false), create: () => true, update: () => true, delete: () => true } },
      });
      for (const u of ["alice", "bob"]) for (let i = 0; i < 3; i++) await h.store.db.reading.create({ data: { id: `${u}-${i}`, sensor: "shared", takenAt: new Date(i), count: BigInt(i), amount: "1" } });
    });
    afterAll(async () => { await h?.close(); });

    it("each user sees only their rows, typed, across patches and late joiners", async () => {
      const mk = (user: string, transport: "ws" | "sse") =>
        makeClient(h.url, transport, superjson, { connectionParams: { user }, headers: { "x-user": user } });
      const clients = [mk("alice", "ws"), mk("bob", "ws"), mk("alice", "sse"), mk("bob", "sse")];
      const users = ["alice", "bob", "alice", "bob"];
      const ws = clients.map((c) => watch<any[]>(c, "readings.list", { sensor: "shared" }));
      const okFor = (i: number, v: any[] | undefined) => !!v && v.length > 0 && v.every((r) => r.id.startsWith(`${users[i]}-`) && typeof r.count === "bigint" && r.takenAt instanceof Date);
      await waitFor("all full", () => ws.every((w, i) => okFor(i, w.last()) || w.errors.length > 0), 15_000).catch(() => undefined);
      await h.store.db.reading.update({ where: { id: "bob-1" }, data: { count: 555n } });
      await h.store.db.reading.update({ where: { id: "alice-2" }, data: { takenAt: new Date(777) } });
      await waitFor("patches", () => ws[1]!.last()?.find((r: any) => r.id === "bob-1")?.count === 555n && ws[0]!.last()?.find((r: any) => r.id === "alice-2")?.takenAt?.getTime?.() === 777, 15_000).catch(() => undefined);
      const late = [mk("alice", "ws"), mk("bob", "sse")];
      const lw = late.map((c) => watch<any[]>(c, "readings.list", { sensor: "shared" }));
      await waitFor("late", () => lw.every((w) => (w.last()?.length ?? 0) > 0 || w.errors.length > 0), 15_000).catch(() => undefined);
      const report = [...ws, ...lw].map((w, i) => `${[...users, "alice", "bob"][i]}: ${(w.last() ?? []).map((r: any) => r.id).join(",")} ${w.errors.map(String).join()}`);
      console.log(report);
      [...ws, ...lw].forEach((w) => w.stop());
      await Promise.all([...clients, ...late].map((c) => c.close()));
      const allUsers = [...users, "alice", "bob"];
      [...ws, ...lw].forEach((w, i) => expect((w.last() ?? []).map((r: any) => r.id.split("-")[0])).toEqual(["x", "x", "x"].map(() => allUsers[i])));
    });
  });
}
