// Job operations on both engines: an app without jobs never creates pg-boss's schema; /metrics
// shows queue depth and attempt durations; a graceful stop lets a running handler finish within
// its grace and hands one that does not back to be retried (not lost, not left "active").
import { afterEach, describe, expect, it } from "vitest";
import { createMetrics, type JobState } from "@tether/server";
import { buildApp } from "./fixtures/app.ts";
import { buildJobsApp, createJobsStore, jobRuns } from "./fixtures/jobsApp.ts";
import { userContext } from "./fixtures/securedApp.ts";
import { engines } from "./support/databases.ts";
import { waitFor } from "./support/waitFor.ts";

const ALICE = userContext("alice");

describe.each(engines)("job operations on %s", (engine) => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const setup = async () => {
    const made = await createJobsStore(engine);
    cleanups.push(made.close);
    return made.store;
  };
  const pgbossSchemas = async (store: Awaited<ReturnType<typeof setup>>) =>
    (await store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'pgboss'`))[0]!.n;

  it("an app without jobs starts no pg-boss and creates no schema for it", async () => {
    const store = await setup();
    const app = buildApp(store);
    cleanups.push(() => app.tether.close());
    await app.tether.start();
    await app.caller({ user: { id: "alice" } }).tasks.add({ projectId: "p1", title: "no jobs here" });
    expect(app.tether.jobRuntime.enabled).toBe(false);
    expect(app.tether.jobRuntime.started).toBe(false);
    expect(await pgbossSchemas(store)).toBe(0);
  });

  it("/metrics shows queue depth and job durations", async () => {
    const store = await setup();
    const app = buildJobsApp(store, { jobs: { limits: { pollingIntervalSeconds: 0.5, superviseIntervalSeconds: 1 } } });
    cleanups.push(() => app.tether.close());
    await app.tether.start();
    expect(await pgbossSchemas(store)).toBe(1);
    const metrics = createMetrics({ jobs: app.tether.jobRuntime });
    const id = await app.caller(ALICE).start.any({ name: "echo", input: { text: "measured" } });
    await app.caller(ALICE).start.any({ name: "echo", input: { text: "later" }, delay: 3_600_000 });
    await waitFor("echo done", async () => (await app.caller(ALICE).$jobs.get({ id })).status === "completed", { timeoutMs: 20_000 });
    let text = "";
    await waitFor("the deferred job in the queue depth", async () => {
      text = await metrics.render();
      return /tether_job_queue_depth\{job="echo",state="deferred"\} 1/.test(text);
    }, { timeoutMs: 20_000 });
    expect(text).toMatch(/tether_job_duration_seconds_count\{job="echo",outcome="completed"\} 1/);
    expect(text).toMatch(/tether_jobs_enqueued_total 2/);
  });

  it("graceful stop: a handler finishing within the grace completes; one that does not is handed back for a retry", async () => {
    const store = await setup();
    let releaseStep: (() => void) | null = null;
    const app = buildJobsApp(store, {
      jobs: { limits: { pollingIntervalSeconds: 0.5, shutdownTimeoutMs: 1_500, retryDelaySeconds: 0 } },
      onStep: () => new Promise<void>((release) => (releaseStep = release)),
    });
    await app.tether.start();
    const finishing = await app.caller(ALICE).start.steps({ steps: 1 });
    const stuck = await app.caller(ALICE).start.wait();
    await waitFor("both running", async () => (await jobRuns(store.sql)).length === 2 && releaseStep !== null, { timeoutMs: 20_000 });
    const stopping = app.tether.close();
    // The finishing one is let go during the grace period.
    releaseStep!();
    await stopping;
    const state = async (id: string) =>
      (await store.sql.query<{ status: JobState["status"] }>(`SELECT status FROM "_tether_jobs" WHERE id = $1`, [id]))[0]!.status;
    expect(await state(finishing)).toBe("completed");
    expect(await state(stuck)).toBe("retrying");

    // Another node picks the handed-back job up.
    const next = buildJobsApp(store, { node: "next", jobs: { limits: { pollingIntervalSeconds: 0.5 } } });
    cleanups.push(() => next.tether.close());
    await next.tether.start();
    await waitFor("the stuck job runs again", async () => (await jobRuns(store.sql, stuck)).length === 2, { timeoutMs: 20_000 });
    expect((await jobRuns(store.sql, stuck)).map((r) => [r.node, r.attempt])).toEqual([["main", 1], ["next", 2]]);
    await next.caller(ALICE).$jobs.cancel({ id: stuck });
  });
});
