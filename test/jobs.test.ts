// Background jobs on both engines: enqueue joins the mutation's transaction (rollback → nothing),
// a committed job runs once with its output in the live state row, bad input and unknown ids are
// typed errors, progress reaches a live subscriber in order, only the owner (or an admin) reads or
// cancels a job, cancel aborts a running handler, retries end in dead letters that can be retried.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobState } from "@tether/server";
import { buildJobsApp, createJobsStore, jobRuns } from "./fixtures/jobsApp.ts";
import { userContext } from "./fixtures/securedApp.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { collectLive } from "./support/liveCollector.ts";
import { waitFor } from "./support/waitFor.ts";

const ALICE = userContext("alice");
const BOB = userContext("bob");
const ADMIN = userContext("root", "admin");

describe.each(engines)("background jobs on %s", (engine) => {
  let store: AppStore;
  let close: () => Promise<void>;
  let app: ReturnType<typeof buildJobsApp>;
  const stepGates = new Map<string, { step: number; release: () => void }>();

  beforeAll(async () => {
    ({ store, close } = await createJobsStore(engine));
    app = buildJobsApp(store, {
      jobs: { limits: { progressIntervalMs: 0, heartbeatRefreshSeconds: 0.2, pollingIntervalSeconds: 0.5 } },
      // Each step of a `steps` job waits for the test to let it go on.
      onStep: (jobId, step) => new Promise<void>((release) => stepGates.set(jobId, { step, release })),
    });
    await app.tether.start();
  });
  afterAll(async () => {
    await app?.tether.close();
    await close?.();
  });

  const state = (id: string, ctx = ALICE) => app.caller(ctx).$jobs.get({ id }) as Promise<JobState>;
  const finished = (id: string, ctx = ALICE) =>
    waitFor(`job ${id} finished`, async () => ["completed", "failed", "cancelled"].includes((await state(id, ctx)).status), { timeoutMs: 20_000 });

  it("a rolled-back mutation enqueues nothing; a committed one runs once, its output in the state row", async () => {
    await expect(app.caller(ALICE).tasks.addWithJob({ projectId: "p1", title: "rolled back", fail: true })).rejects.toThrow(/failed after enqueue/);
    const leftovers = await store.sql.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM "_tether_jobs")::int + (SELECT count(*) FROM pgboss.job WHERE name = 'tether.echo')::int + (SELECT count(*) FROM "Task" WHERE title = 'rolled back')::int AS n`,
    );
    expect(leftovers[0]!.n).toBe(0);

    const { jobId } = await app.caller(ALICE).tasks.addWithJob({ projectId: "p1", title: "committed" });
    await finished(jobId);
    const done = await state(jobId);
    expect(done).toMatchObject({ id: jobId, name: "echo", status: "completed", attempts: 1, progress: 100, output: { text: "committed", by: "alice" }, error: null });
    expect((await jobRuns(store.sql, jobId)).map((r) => [r.attempt, r.owner])).toEqual([[1, "alice"]]);
    // The rolled-back one never ran either.
    expect((await jobRuns(store.sql)).filter((r) => r.name === "echo")).toHaveLength(1);
  });

  it("withJobs(jobs).inTransaction(tx, owner) joins a Prisma transaction Tether did not open: rollback enqueues nothing, commit runs once as the owner", async () => {
    const inTx = (tx: unknown) => app.tether.withJobs(app.jobs).inTransaction(tx, { id: "alice" });
    await expect(
      store.db.$transaction(async (tx) => {
        await tx.task.create({ data: { projectId: "p1", title: "outside rolled back" } });
        await inTx(tx).enqueue("echo", { text: "outside rolled back" });
        throw new Error("rolled back after enqueue");
      }),
    ).rejects.toThrow("rolled back after enqueue");
    const leftovers = await store.sql.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM pgboss.job WHERE name = 'tether.echo' AND data->'input'->>'text' = 'outside rolled back')::int + (SELECT count(*) FROM "Task" WHERE title = 'outside rolled back')::int AS n`,
    );
    expect(leftovers[0]!.n).toBe(0);

    const jobId = await store.db.$transaction(async (tx) => inTx(tx).enqueue("echo", { text: "outside committed" }));
    await finished(jobId);
    expect(await state(jobId)).toMatchObject({ status: "completed", output: { text: "outside committed", by: "alice" } });
    expect((await jobRuns(store.sql, jobId)).map((r) => [r.attempt, r.owner])).toEqual([[1, "alice"]]);
    // The query that found nothing for the rolled-back one finds the committed one.
    const committed = await store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'tether.echo' AND data->'input'->>'text' = 'outside committed'`);
    expect(committed[0]!.n).toBe(1);
  });

  it("bad input is BAD_REQUEST, an unknown or someone else's job NOT_FOUND, a job is not callable", async () => {
    await expect(app.caller(ALICE).start.any({ name: "echo", input: { text: 42 } })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(app.caller(ALICE).start.any({ name: "echo", input: { text: "x" }, delay: -1 })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(state("no-such-job")).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(state("00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(app.caller(ALICE).$jobs.cancel({ id: "00000000-0000-4000-8000-000000000000" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(app.caller(ALICE).jobs.echo({ text: "direct" })).rejects.toMatchObject({ code: "NOT_FOUND" });

    const id = await app.caller(ALICE).start.any({ name: "echo", input: { text: "mine" } });
    await finished(id);
    await expect(state(id, BOB)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(app.caller(userContext("alice2")).$jobs.get({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(app.caller({ user: null, session: null }).$jobs.get({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await state(id, ADMIN)).status).toBe("completed");
    await expect(app.caller(BOB).$jobs.cancel({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("an idempotency key returns the unfinished job's id instead of enqueueing another", async () => {
    const first = await app.caller(ALICE).start.any({ name: "echo", input: { text: "once" }, key: "k1", delay: 60_000 });
    const second = await app.caller(ALICE).start.any({ name: "echo", input: { text: "once" }, key: "k1", delay: 60_000 });
    expect(second).toBe(first);
    expect((await state(first)).status).toBe("queued");
    await app.caller(ALICE).$jobs.cancel({ id: first });
    const third = await app.caller(ALICE).start.any({ name: "echo", input: { text: "again" }, key: "k1", delay: 60_000 });
    expect(third).not.toBe(first);
    await app.caller(ALICE).$jobs.cancel({ id: third });
  });

  it("progress reaches a live subscriber in order, then the final state; another user's subscription gets NOT_FOUND", async () => {
    const id = await app.caller(ALICE).start.steps({ steps: 5 });
    const controller = new AbortController();
    const stream = await app.caller(ALICE, controller.signal).$live({ path: "$jobs.get", input: { id } });
    const live = collectLive<JobState>(stream as AsyncIterable<unknown>, controller);

    const otherController = new AbortController();
    const otherStream = await app.caller(BOB, otherController.signal).$live({ path: "$jobs.get", input: { id } });
    const other = collectLive<JobState>(otherStream as AsyncIterable<unknown>, otherController);

    const seen: number[] = [];
    const record = () => {
      const p = live.state.data?.progress;
      if (p !== undefined && seen[seen.length - 1] !== p) seen.push(p);
    };
    for (let step = 1; step <= 5; step += 1) {
      await waitFor(`step ${step} reached`, () => stepGates.get(id)?.step === step, { timeoutMs: 20_000 });
      await live.until(() => live.state.data?.progress === step * 20);
      record();
      stepGates.get(id)!.release();
    }
    await live.until(() => live.state.data?.status === "completed", 20_000);
    record();
    expect(seen).toEqual([20, 40, 60, 80, 100]);
    expect(live.state.data).toMatchObject({ status: "completed", output: { steps: 5 }, message: "step 5" });
    // Every value the stream carried had progress never going back.
    const progresses = live.state.messages.filter((m) => m.kind === "full").map((m) => (m as { data: JobState }).data.progress);
    expect(progresses).toEqual([...progresses].sort((a, b) => a - b));

    await other.until(() => other.state.ended);
    expect(other.state.error).toMatchObject({ code: "NOT_FOUND" });
    expect(other.state.messages).toEqual([]);
    await live.stop();
  });

  it("cancel stops a running handler (owner only); the state says cancelled", async () => {
    const id = await app.caller(ALICE).start.wait();
    await waitFor("the handler runs", async () => (await jobRuns(store.sql, id)).length === 1, { timeoutMs: 20_000 });
    await expect(app.caller(BOB).$jobs.cancel({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    const after = await app.caller(ALICE).$jobs.cancel({ id });
    expect(after.status).toBe("cancelled");
    await waitFor("the handler stopped", () => app.tether.jobRuntime.stats().running === 0);
    expect((await state(id)).status).toBe("cancelled");
    expect(await jobRuns(store.sql, id)).toHaveLength(1);
  });

  it("retries back off and end in a dead letter; retrying the dead letter runs the same job again", async () => {
    const id = await app.caller(ALICE).start.flaky({ failures: 3 });
    await finished(id);
    const failed = await state(id);
    expect(failed).toMatchObject({ status: "failed", attempts: 3, maxAttempts: 3, error: "failure 3" });
    const runs = await store.sql.query<{ attempt: number; at: Date }>(`SELECT attempt, at FROM job_runs WHERE job_id = $1 ORDER BY at`, [id]);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    // Backoff: the second retry waited at least the first delay (1 s base, doubling with jitter).
    const gaps = runs.slice(1).map((r, i) => new Date(r.at).getTime() - new Date(runs[i]!.at).getTime());
    expect(gaps.every((gap) => gap >= 900)).toBe(true);

    await expect(app.caller(ALICE).$jobs.deadLetters()).rejects.toMatchObject({ code: "FORBIDDEN" });
    let letters: Awaited<ReturnType<typeof app.tether.jobRuntime.deadLetters>> = [];
    await waitFor("the dead letter", async () => {
      letters = (await app.caller(ADMIN).$jobs.deadLetters()).filter((l) => l.jobId === id);
      return letters.length === 1;
    });
    expect(letters[0]).toMatchObject({ name: "flaky", error: "failure 3" });
    await app.caller(ADMIN).$jobs.retryDeadLetter({ id: letters[0]!.id });
    await waitFor("the retried job completed", async () => (await state(id)).status === "completed", { timeoutMs: 20_000 });
    expect(await state(id)).toMatchObject({ attempts: 4, maxAttempts: 4, output: { attempts: 4 } });
    expect((await app.caller(ADMIN).$jobs.deadLetters()).filter((l) => l.jobId === id)).toEqual([]);
  });
});
