// Red team (jobs, round 2): concurrency and fairness of the workers, through the public API.
// 1. `.options({ concurrency: 1 })` promises at most one running handler per job name per node;
//    observed on PGlite: 4–5 handlers of a concurrency-1 job running at once.
// 2. One user's backlog starves another: the demo's exports.start has no per-user cap beyond the
//    generic 120 mutations/min, and a big project's export takes minutes (300 ms per 2 tasks), so
//    Alice queuing 100 exports delays Bob's single export by hours: jobs run by priority then
//    creation, with no per-owner fairness or in-flight cap.
// Each test FAILS while the hole exists. (2) is not fixed in the runtime — jobs of a name start by
// priority then enqueue order, documented in docs/jobs.md — the demo caps a user's unfinished
// exports instead (test/authSignUpJobs.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { initTether } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { schema } from "../../generated/tether/index.ts";
import { createTestStore, engines } from "../support/databases.ts";
import { connectAs, userFromRequest } from "../support/userClient.ts";
import { waitFor } from "../support/waitFor.ts";

for (const engine of engines) {
  describe(`jobs concurrency and fairness (${engine})`, () => {
    const cleanups: Array<() => unknown> = [];
    let server: TetherServer;
    let alice: any;
    let bob: any;
    const started: string[] = [];
    const gates: Array<() => void> = [];
    let running = 0;
    let maxRunning = 0;

    beforeAll(async () => {
      const { store, close } = await createTestStore(engine);
      cleanups.push(close);
      const tether = initTether<{ user: { id: string } | null }>().create({ store, schema, limits: { rate: false } });
      const jobs = tether.jobs({
        slow: tether.job.input(z.object({ tag: z.string() })).options({ retries: 0, concurrency: 1 }).handler(async ({ input }) => {
          started.push(input.tag);
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise<void>((resolve) => gates.push(resolve));
          running--;
          return input.tag;
        }),
      });
      const { mutation } = tether.withJobs(jobs);
      const router = tether.appRouter({
        jobs,
        start: mutation.input(z.object({ tag: z.string() })).mutation(({ ctx, input }) => ctx.jobs.enqueue("slow", input)),
      });
      await tether.start();
      server = await createTetherServer({ router, createContext: userFromRequest, port: 0 });
      cleanups.push(() => server.close(), () => tether.close());
      alice = connectAs(server, "alice", cleanups).trpc;
      bob = connectAs(server, "bob", cleanups).trpc;
    });

    afterAll(async () => {
      for (const g of gates) g();
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    });

    const backlog = 6;
    let aliceIds: string[] = [];
    let bobId = "";

    async function allSettled() {
      // Release handlers one at a time until all 7 jobs ran; the barrier is every job completed.
      await waitFor("all jobs completed", async () => {
        gates.shift()?.();
        const states = await Promise.all([
          ...aliceIds.map((id) => alice.$jobs.get.query({ id })),
          bob.$jobs.get.query({ id: bobId }),
        ]);
        return states.every((s: any) => s.status === "completed");
      }, { timeoutMs: 60_000 });
    }

    it("setup: alice queues a backlog, then bob one job", async () => {
      for (let i = 0; i < backlog; i++) aliceIds.push(await alice.start.mutate({ tag: `alice-${i}` }));
      await waitFor("alice's first running", () => started.length >= 1, { timeoutMs: 30_000 });
      bobId = await bob.start.mutate({ tag: "bob" });
      await allSettled();
      expect(started).toHaveLength(backlog + 1);
    });

    it("concurrency: 1 is honoured — never two handlers of the job at once on one node", () => {
      expect(maxRunning).toBe(1);
    });
  });
}
