/**
 * The jobs bench's app: a no-op job (it only reports its start, for enqueue→start latency) and a
 * probe job that reports progress on a schedule (for progress → subscriber latency). Used in
 * process by jobs.bench.ts and in child processes by benchNode.ts.
 */
import { z } from "zod";
import { initTether, type JobLimits } from "@tether/server";
import { schema } from "../../generated/tether/index.ts";
import type { AppStore } from "../support/databases.ts";
import type { SecuredContext } from "../fixtures/securedApp.ts";

export interface BenchAppOptions {
  /** Run handlers on this node. */
  work: boolean;
  limits?: Partial<JobLimits>;
  /** A `noop` handler started (its `seq`). */
  onStart?: (seq: number) => void;
  /** A `probe` handler is about to report progress `value`. */
  onReport?: (jobId: string, value: number) => void;
}

export function buildBenchApp(store: AppStore, options: BenchAppOptions) {
  const tether = initTether<SecuredContext>().create({ store, schema, jobs: { work: options.work, limits: options.limits }, limits: { rate: false } });
  const jobs = tether.jobs({
    noop: tether.job.input(z.object({ seq: z.number().int() })).handler(({ input }) => {
      options.onStart?.(input.seq);
      return null;
    }),
    probe: tether.job
      .input(z.object({ updates: z.number().int().min(1).max(100), gapMs: z.number().int().min(0) }))
      .handler(async ({ ctx, input, progress }) => {
        for (let value = 1; value <= input.updates; value += 1) {
          options.onReport?.(ctx.job.id, value);
          await progress(value);
          // Longer than the progress interval, so every report is written at once (no coalescing).
          await new Promise((resolve) => setTimeout(resolve, input.gapMs));
        }
        return null;
      }),
  });
  const router = tether.appRouter({ jobs });
  return { tether, router, jobs };
}

export type BenchRouter = ReturnType<typeof buildBenchApp>["router"];
