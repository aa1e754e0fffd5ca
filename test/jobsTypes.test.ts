// Type tests for jobs, checked by `npm run typecheck` (root tsc covers test/). Each expected
// error below asserts that a mistake does not compile: a wrong job name or input in
// `ctx.jobs.enqueue`, a missing required input. The client's copy of JobState must stay the
// server's.
import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { initTether, type JobOutput, type JobState as ServerJobState } from "@tether/server";
import type { JobState as ClientJobState } from "@tether/client";
import { schema } from "../generated/tether/index.ts";
import type { AppStore } from "./support/databases.ts";

/** Never called: it exists for the type checker. */
function typedApp(store: AppStore) {
  const tether = initTether<{ user: { id: string } | null }>().create({ store, schema });
  const jobs = tether.jobs({
    exportCsv: tether.job.input(z.object({ projectId: z.string() })).handler(async ({ ctx, input, progress, signal }) => {
      expectTypeOf(input).toEqualTypeOf<{ projectId: string }>();
      expectTypeOf(ctx.user).toEqualTypeOf<{ id: string } | null>();
      expectTypeOf(signal).toEqualTypeOf<AbortSignal>();
      await progress(50, "half");
      await ctx.db.task.count();
      return { url: `/exports/${input.projectId}.csv` };
    }),
    mail: tether.router({
      welcome: tether.job.handler(() => "sent"),
    }),
  });
  const { mutation } = tether.withJobs(jobs);
  return tether.appRouter({
    jobs,
    ok: mutation.mutation(async ({ ctx }) => {
      const id = await ctx.jobs.enqueue("exportCsv", { projectId: "p1" }, { delay: 1000, priority: 1, key: "k", retries: 1 });
      expectTypeOf(id).toEqualTypeOf<string>();
      await ctx.jobs.enqueue("mail.welcome");
      return id;
    }),
    wrongName: mutation.mutation(({ ctx }) =>
      // @ts-expect-error no job of that name
      ctx.jobs.enqueue("exportPdf", { projectId: "p1" }),
    ),
    wrongInput: mutation.mutation(({ ctx }) =>
      // @ts-expect-error projectId is a string
      ctx.jobs.enqueue("exportCsv", { projectId: 1 }),
    ),
    missingInput: mutation.mutation(({ ctx }) =>
      // @ts-expect-error exportCsv needs its input
      ctx.jobs.enqueue("exportCsv"),
    ),
  });
}

type Jobs = ReturnType<typeof typedApp>["_def"]["record"]["jobs"];

describe("job types", () => {
  it("outputs are inferred from handlers; the client's JobState is the server's", () => {
    expectTypeOf<JobOutput<Jobs, "exportCsv">>().toEqualTypeOf<{ url: string }>();
    expectTypeOf<JobOutput<Jobs, "mail.welcome">>().toEqualTypeOf<string>();
    expectTypeOf<ClientJobState<{ url: string }>>().toEqualTypeOf<ServerJobState<{ url: string }>>();
    expect(typeof typedApp).toBe("function");
  });
});
