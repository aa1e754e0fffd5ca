// Red team (jobs, round 2): attacks through the public API only — a small app of our own with
// tether.job / ctx.jobs.enqueue / $jobs.*, over a real server. Each test FAILS while the hole exists.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { initTether } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { schema } from "../../generated/tether/index.ts";
import { createTestStore, engines } from "../support/databases.ts";
import { connectAs, userFromRequest } from "../support/userClient.ts";
import { waitFor } from "../support/waitFor.ts";

type Trpc = any; // the router is built per engine; the client is untyped on purpose (bad inputs)

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (e) {
    const err = e as { data?: { code?: string }; message?: string };
    return err.data?.code ?? `THROWN:${err.message}`;
  }
}

for (const engine of engines) {
  describe(`jobs red team 2 (${engine})`, () => {
    const cleanups: Array<() => unknown> = [];
    let server: TetherServer;
    let alice: Trpc;
    let bob: Trpc;
    const hang: { aborted: number } = { aborted: 0 };

    beforeAll(async () => {
      const { store, close } = await createTestStore(engine);
      cleanups.push(close);
      const tether = initTether<{ user: { id: string } | null }>().create({ store, schema });
      const jobs = tether.jobs({
        throwObject: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => {
          throw { code: 42, detail: "plain object" };
        }),
        throwUndefined: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => {
          throw undefined;
        }),
        throwString: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => {
          throw "just a string";
        }),
        throwCyclic: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => {
          const o: Record<string, unknown> = {};
          o.self = o;
          throw o;
        }),
        hugeError: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => {
          throw new Error("x".repeat(5_000_000));
        }),
        hugeOutput: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => "y".repeat(20_000_000)),
        oddOutput: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => ({ n: 10n as unknown as number })),
        undefinedOutput: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => undefined),
        badProgress: tether.job.input(z.object({})).options({ retries: 0 }).handler(async ({ progress }) => {
          await progress(Number.NaN, "nan");
          await progress(Number.POSITIVE_INFINITY, "inf");
          await progress(-50, "neg");
          await progress(1e12, "huge");
          await progress(50, "m".repeat(2_000_000));
          return "done";
        }),
        quick: tether.job.input(z.object({})).options({ retries: 0 }).handler(async () => "ok"),
        ignoresSignal: tether.job.input(z.object({})).options({ retries: 0 }).handler(async ({ signal }) => {
          signal.addEventListener("abort", () => void hang.aborted++);
          await new Promise(() => undefined); // never returns, ignores the signal
        }),
      });
      const { mutation } = tether.withJobs(jobs);
      const router = tether.appRouter({
        jobs,
        enqueue: mutation
          .input(z.object({ name: z.string() }))
          .mutation(({ ctx, input }) => (ctx.jobs as any).enqueue(input.name, {})),
      });
      await tether.start();
      server = await createTetherServer({ router, createContext: userFromRequest, port: 0 });
      cleanups.push(() => server.close(), () => tether.close());
      alice = connectAs(server, "alice", cleanups).trpc;
      bob = connectAs(server, "bob", cleanups).trpc;
    });

    afterAll(async () => {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    });

    async function finished(trpc: Trpc, id: string) {
      let state: any;
      await waitFor(`job ${id} finished`, async () => {
        state = await trpc.$jobs.get.query({ id });
        return ["completed", "failed", "cancelled"].includes(state.status);
      }, { timeoutMs: 30_000 });
      return state;
    }

    it.each(["throwObject", "throwUndefined", "throwString", "throwCyclic"])(
      "a handler throwing a non-Error (%s) fails the job with a string error, no crash",
      async (name) => {
        const id = await alice.enqueue.mutate({ name });
        const state = await finished(alice, id);
        expect(state.status).toBe("failed");
        expect(typeof state.error).toBe("string");
      },
    );

    it("a 5 MB error message is bounded in the stored state", async () => {
      const id = await alice.enqueue.mutate({ name: "hugeError" });
      const state = await finished(alice, id);
      expect(state.status).toBe("failed");
      expect(state.error.length).toBeLessThan(100_000);
    });

    it("a 20 MB output fails the attempt with a message (maxOutputBytes), not stored", async () => {
      const id = await alice.enqueue.mutate({ name: "hugeOutput" });
      const state = await finished(alice, id);
      expect(state.status).toBe("failed");
      expect(state.output).toBeNull();
      expect(typeof state.error).toBe("string");
    });

    it("an output JSON cannot hold (BigInt) fails the attempt, the job does not hang active", async () => {
      const id = await alice.enqueue.mutate({ name: "oddOutput" });
      const state = await finished(alice, id);
      expect(state.status).toBe("failed");
    });

    it("undefined output completes with null output", async () => {
      const id = await alice.enqueue.mutate({ name: "undefinedOutput" });
      const state = await finished(alice, id);
      expect(state.status).toBe("completed");
      expect(state.output ?? null).toBeNull();
    });

    it("progress NaN / Infinity / negative / huge and a 2 MB message: stored clamped and bounded", async () => {
      const id = await alice.enqueue.mutate({ name: "badProgress" });
      const state = await finished(alice, id);
      expect(state.status).toBe("completed");
      expect(Number.isFinite(state.progress)).toBe(true);
      expect(state.progress).toBeGreaterThanOrEqual(0);
      expect(state.progress).toBeLessThanOrEqual(100);
      expect((state.message ?? "").length).toBeLessThan(100_000);
    });

    it("cancel after completion and cancel twice return the state, never an error", async () => {
      const id = await alice.enqueue.mutate({ name: "quick" });
      await finished(alice, id);
      expect(await codeOf(alice.$jobs.cancel.mutate({ id }))).toBe("OK");
      expect(await codeOf(alice.$jobs.cancel.mutate({ id }))).toBe("OK");
      expect((await alice.$jobs.get.query({ id })).status).toBe("completed");
    });

    it("a handler that never returns and ignores signal: cancel marks it cancelled (twice is fine)", async () => {
      const id = await alice.enqueue.mutate({ name: "ignoresSignal" });
      await waitFor("active", async () => (await alice.$jobs.get.query({ id })).status === "active");
      expect(await codeOf(bob.$jobs.cancel.mutate({ id }))).toBe("NOT_FOUND");
      expect(await codeOf(alice.$jobs.cancel.mutate({ id }))).toBe("OK");
      expect(await codeOf(alice.$jobs.cancel.mutate({ id }))).toBe("OK");
      const state = await finished(alice, id);
      expect(state.status).toBe("cancelled");
      expect(hang.aborted).toBe(1);
    });

    it("another user: get / cancel / retryDeadLetter of alice's job are NOT_FOUND / FORBIDDEN", async () => {
      const id = await alice.enqueue.mutate({ name: "quick" });
      expect(await codeOf(bob.$jobs.get.query({ id }))).toBe("NOT_FOUND");
      expect(await codeOf(bob.$jobs.cancel.mutate({ id }))).toBe("NOT_FOUND");
      expect(await codeOf(bob.$jobs.retryDeadLetter.mutate({ id }))).toBe("FORBIDDEN");
      expect(await codeOf(bob.$jobs.runNow.mutate({ name: "quick" }))).toBe("FORBIDDEN");
      expect(await codeOf(bob.$jobs.deadLetters.query())).toBe("FORBIDDEN");
      expect(await codeOf(bob.$jobs.schedules.query())).toBe("FORBIDDEN");
    });

    it.each([
      ["get", { id: 123 }],
      ["get", { id: null }],
      ["get", {}],
      ["get", { id: "00000000-0000-0000-0000-000000000000" }],
      ["get", { id: "ZZZZZZZZ-0000-0000-0000-000000000000" }],
      ["get", { id: "a".repeat(4_000) }],
      ["get", { id: ["00000000-0000-0000-0000-000000000000"] }],
      ["cancel", { id: "ffffffff-ffff-ffff-ffff-ffffffffffff" }],
      ["cancel", { id: {} }],
    ])("bad input $jobs.%s(%j) is a client error, never a 500", async (proc, input) => {
      const call = proc === "get" ? alice.$jobs.get.query(input) : alice.$jobs.cancel.mutate(input);
      const code = await codeOf(call);
      expect(["BAD_REQUEST", "NOT_FOUND", "PAYLOAD_TOO_LARGE"]).toContain(code);
    });

    it("an anonymous caller cannot read a job", async () => {
      const id = await alice.enqueue.mutate({ name: "quick" });
      const res = await fetch(`${server.url}/trpc/$jobs.get?input=${encodeURIComponent(JSON.stringify({ id }))}`);
      expect(res.status).toBe(404);
    });
  });
}
