// Red team (jobs, round 2): a handler that never returns and ignores `signal`.
// (a) timeoutSeconds must still end the attempt (failed, state visible) — the job must not stay
//     "active" forever; (b) after a cancel of such a handler the job name's worker slot is freed, so
//     the next job of that name (concurrency 1) still runs. Each test FAILS while the hole exists.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { initTether } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { schema } from "../../generated/tether/index.ts";
import { createTestStore, engines } from "../support/databases.ts";
import { connectAs, userFromRequest } from "../support/userClient.ts";
import { waitFor } from "../support/waitFor.ts";

for (const engine of engines) {
  describe(`hung handlers (${engine})`, () => {
    const cleanups: Array<() => unknown> = [];
    let server: TetherServer;
    let alice: any;

    beforeAll(async () => {
      const { store, close } = await createTestStore(engine);
      cleanups.push(close);
      // A handler that ignores its signal is abandoned `abandonAfterAbortMs` after the abort (and
      // shutdown waits `shutdownTimeoutMs` for running ones): short here, since these handlers
      // never return, so the 10 s defaults would only be waited out.
      const tether = initTether<{ user: { id: string } | null }>().create({
        store,
        schema,
        limits: { rate: false },
        jobs: { limits: { abandonAfterAbortMs: 500, shutdownTimeoutMs: 1_000 } },
      });
      const jobs = tether.jobs({
        hangTimeout: tether.job.input(z.object({})).options({ retries: 0, timeoutSeconds: 1 }).handler(async () => {
          await new Promise(() => undefined);
        }),
        hangOrQuick: tether.job.input(z.object({ hang: z.boolean() })).options({ retries: 0, concurrency: 1 }).handler(async ({ input }) => {
          if (input.hang) await new Promise(() => undefined);
          return "ran";
        }),
      });
      const { mutation } = tether.withJobs(jobs);
      const router = tether.appRouter({
        jobs,
        timeout: mutation.mutation(({ ctx }) => ctx.jobs.enqueue("hangTimeout", {})),
        hq: mutation.input(z.object({ hang: z.boolean() })).mutation(({ ctx, input }) => ctx.jobs.enqueue("hangOrQuick", input)),
      });
      await tether.start();
      server = await createTetherServer({ router, createContext: userFromRequest, port: 0 });
      cleanups.push(() => server.close(), () => tether.close());
      alice = connectAs(server, "alice", cleanups).trpc;
    });

    afterAll(async () => {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    });

    it("timeoutSeconds ends an attempt whose handler ignores signal", async () => {
      const id = await alice.timeout.mutate();
      await waitFor("timed-out job failed", async () => (await alice.$jobs.get.query({ id })).status === "failed", { timeoutMs: 80_000 });
      const state = await alice.$jobs.get.query({ id });
      expect(typeof state.error).toBe("string");
    });

    it("cancelling a hung handler frees its slot: the next job of the name runs", async () => {
      const hung = await alice.hq.mutate({ hang: true });
      await waitFor("hung active", async () => (await alice.$jobs.get.query({ id: hung })).status === "active", { timeoutMs: 30_000 });
      await alice.$jobs.cancel.mutate({ id: hung });
      const next = await alice.hq.mutate({ hang: false });
      await waitFor("next completed", async () => (await alice.$jobs.get.query({ id: next })).status === "completed", { timeoutMs: 60_000 });
      expect((await alice.$jobs.get.query({ id: hung })).status).toBe("cancelled");
    });
  });
}
