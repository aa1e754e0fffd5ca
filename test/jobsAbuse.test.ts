// The red team's attacks on background jobs, kept as tests on both engines, through the public
// API (a real server over HTTP and WebSocket, and the app's own callers):
// 1. a job with `retryBackoff: false` enqueues and runs (pg-boss refused the retryDelayMax we sent);
// 2. a NUL or a non-UUID as a job id is BAD_REQUEST on every $jobs procedure, an unknown UUID
//    NOT_FOUND, never a 500 with Postgres's message; NUL in a key, an input, an output or an
//    error is a typed error or a recorded failure, never a 500 or a hung job;
// 3. awaited progress() in a tight loop coalesces (not one write per call);
// 4. an unknown job name through an untyped ctx.jobs is BAD_REQUEST naming it;
// 5. delay/runAt/priority/retries out of range are BAD_REQUEST naming the bound;
// 6. a job called as a procedure over HTTP (POST and GET) answers exactly as an unknown path does;
// 7. idempotency keys are per user unless the job says `keyScope: "global"`;
// 8. watchJob hands each distinct state to its listener once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobState } from "@tether/server";
import type { TetherServer } from "@tether/server/adapters/node";
import { watchJob, type JobWatch, type TetherClient } from "@tether/client";
import { buildJobsApp, createJobsStore, jobsClientAs, serveJobsApp, type JobsRouter } from "./fixtures/jobsApp.ts";
import { userContext } from "./fixtures/securedApp.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { waitFor } from "./support/waitFor.ts";

const ALICE = userContext("alice");
const BOB = userContext("bob");
const ADMIN = userContext("root", "admin");
const NUL = String.fromCharCode(0);
const UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000";

describe.each(engines)("attacks on background jobs on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let app: ReturnType<typeof buildJobsApp>;
  let server: TetherServer;
  const clients: TetherClient<JobsRouter>[] = [];

  beforeAll(async () => {
    ({ store, close: closeStore } = await createJobsStore(engine));
    // Default progress interval (100 ms): the coalescing under attack is the real one.
    app = buildJobsApp(store, { jobs: { limits: { heartbeatRefreshSeconds: 0.2, pollingIntervalSeconds: 0.5 } } });
    await app.tether.start();
    server = await serveJobsApp(app.router);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await app?.tether.close();
    await closeStore?.();
  });

  const state = (id: string, ctx = ALICE) => app.caller(ctx).$jobs.get({ id }) as Promise<JobState>;
  const finished = (id: string, ctx = ALICE) =>
    waitFor(`job ${id} finished`, async () => ["completed", "failed", "cancelled"].includes((await state(id, ctx)).status), { timeoutMs: 30_000 });
  /** A raw HTTP call as `user`: status and parsed body, as any client would see them. */
  const http = async (path: string, { user = "alice", method = "GET", input }: { user?: string; method?: "GET" | "POST"; input?: unknown } = {}) => {
    const query = method === "GET" && input !== undefined ? `?input=${encodeURIComponent(JSON.stringify(input))}` : "";
    const response = await fetch(`${server.url}/trpc/${path}${query}`, {
      method,
      headers: { "x-user": user, ...(method === "POST" ? { "content-type": "application/json" } : {}) },
      ...(method === "POST" ? { body: JSON.stringify(input ?? null) } : {}),
    });
    return { status: response.status, body: (await response.json()) as { error?: { message: string; data?: { code?: string } } } };
  };

  it("1. a job with retryBackoff: false enqueues and runs", async () => {
    const id = await app.caller(ALICE).start.any({ name: "plain", input: undefined });
    await finished(id);
    expect(await state(id)).toMatchObject({ status: "completed", output: "plain", maxAttempts: 2 });
  });

  it("2. NUL or non-UUID job ids are BAD_REQUEST on every $jobs procedure; an unknown UUID is NOT_FOUND", async () => {
    for (const bad of [`x${NUL}y`, "not-a-uuid", `${UNKNOWN_UUID}${NUL}`]) {
      for (const [path, method, user] of [
        ["$jobs.get", "GET", "alice"],
        ["$jobs.cancel", "POST", "alice"],
        ["$jobs.retryDeadLetter", "POST", "root"],
      ] as const) {
        const { status, body } = await http(path, { method, user, input: { id: bad } });
        expect([path, status, body.error?.data?.code]).toEqual([path, 400, "BAD_REQUEST"]);
        expect(body.error?.message).not.toMatch(/invalid byte sequence|uuid:|syntax/i);
      }
    }
    for (const [path, method, user] of [
      ["$jobs.get", "GET", "alice"],
      ["$jobs.cancel", "POST", "alice"],
      ["$jobs.retryDeadLetter", "POST", "root"],
    ] as const) {
      const { status, body } = await http(path, { method, user, input: { id: UNKNOWN_UUID } });
      expect([path, status, body.error?.data?.code]).toEqual([path, 404, "NOT_FOUND"]);
    }
    // Someone else's job answers exactly like a job that does not exist.
    const id = await app.caller(ALICE).start.any({ name: "echo", input: { text: "mine" } });
    const other = await http("$jobs.get", { user: "bob", input: { id } });
    const absent = await http("$jobs.get", { user: "bob", input: { id: UNKNOWN_UUID } });
    expect(other).toEqual(absent);
    // runNow (admin) with a NUL in the name: NOT_FOUND, no database error.
    const runNow = await http("$jobs.runNow", { method: "POST", user: "root", input: { name: `echo${NUL}` } });
    expect([runNow.status, runNow.body.error?.data?.code]).toEqual([404, "NOT_FOUND"]);
  });

  it("2. NUL in a key or an input is BAD_REQUEST; in an output or an error the attempt fails and says why", async () => {
    const caller = app.caller(ALICE);
    await expect(caller.start.any({ name: "echo", input: { text: "x" }, key: `k${NUL}` })).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/key/) });
    await expect(caller.start.any({ name: "echo", input: { text: `a${NUL}b` } })).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/input\.text/) });
    await expect(caller.start.any({ name: "plain", input: { [`k${NUL}`]: 1 } })).rejects.toMatchObject({ code: "BAD_REQUEST" });

    const output = await caller.start.any({ name: "unstorable", input: { how: "output" } });
    await finished(output);
    expect(await state(output)).toMatchObject({ status: "failed", error: expect.stringMatching(/output\.text holds text the database cannot store/) });
    const thrown = await caller.start.any({ name: "unstorable", input: { how: "throw" } });
    await finished(thrown);
    expect(await state(thrown)).toMatchObject({ status: "failed", error: "bad\uFFFDbyte" });
  });

  it("3. awaited progress in a tight loop coalesces; the last value lands before completion", async () => {
    const before = app.tether.jobRuntime.stats().progressWrites;
    const id = await app.caller(ALICE).start.any({ name: "chatty", input: { count: 2_000 } });
    await finished(id);
    expect(await state(id)).toMatchObject({ status: "completed", progress: 100, message: "report 2000", output: { reports: 2_000 } });
    // One write per report was 2,000 writes; coalesced, one per 100 ms window of the loop.
    expect(app.tether.jobRuntime.stats().progressWrites - before).toBeLessThan(200);
  });

  it("4. an unknown job name through an untyped ctx.jobs is BAD_REQUEST naming it", async () => {
    await expect(app.caller(ALICE).start.any({ name: "noSuchJob", input: {} })).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/no job named "noSuchJob"/) });
    const { status, body } = await http("start.any", { method: "POST", input: { name: `x${NUL}` } });
    expect([status, body.error?.data?.code]).toEqual([400, "BAD_REQUEST"]);
  });

  it("5. delay, runAt, priority and retries out of range are BAD_REQUEST naming the bound", async () => {
    const caller = app.caller(ALICE);
    const echo = { name: "echo", input: { text: "t" } };
    const max = app.tether.jobRuntime.limits.maxDelayMs;
    await expect(caller.start.any({ ...echo, delay: 1e20 })).rejects.toMatchObject({ code: "BAD_REQUEST", message: `delay must be a number of ms from 0 to ${max}` });
    await expect(caller.start.any({ ...echo, delay: -1 })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    for (const delay of [Number.NaN, Number.POSITIVE_INFINITY, -5, max + 1]) {
      await expect(app.tether.jobRuntime.enqueueNow("echo", { text: "t" }, { delay })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    }
    await expect(caller.start.any({ ...echo, runAt: new Date(Number.NaN) })).rejects.toMatchObject({ code: "BAD_REQUEST", message: "runAt must be a valid Date" });
    await expect(caller.start.any({ ...echo, runAt: new Date(Date.now() + max + 60_000) })).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/runAt must be at most/) });
    await expect(caller.start.any({ ...echo, priority: 1e20 })).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/priority/) });
    await expect(caller.start.any({ ...echo, retries: 1e9 })).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/retries/) });
    // Over HTTP too (JSON carries 1e20), and the message is ours.
    const { status, body } = await http("start.any", { method: "POST", input: { ...echo, delay: 1e20 } });
    expect([status, body.error?.message]).toEqual([400, `delay must be a number of ms from 0 to ${max}`]);
    // The earliest Date there is: a past time means now, and it runs.
    const past = await caller.start.any({ ...echo, runAt: new Date(-8.64e15) });
    await finished(past);
    expect((await state(past)).status).toBe("completed");
  });

  it("6. a job called over HTTP looks exactly like an unknown path (POST and GET)", async () => {
    for (const method of ["POST", "GET"] as const) {
      const job = await http("jobs.echo", { method, input: { text: "direct" } });
      const unknown = await http("jobs.nope", { method, input: { text: "direct" } });
      expect(job.status).toBe(unknown.status);
      expect(JSON.stringify(job.body).replaceAll("jobs.echo", "PATH")).toBe(JSON.stringify(unknown.body).replaceAll("jobs.nope", "PATH"));
    }
    expect((await http("jobs.echo", { method: "POST", input: { text: "direct" } })).status).toBe(404);
    await expect(app.caller(ALICE).jobs.echo({ text: "direct" })).rejects.toMatchObject({ code: "NOT_FOUND", message: expect.stringMatching(/^No procedure found on path/) });
  });

  it("7. an idempotency key is per user unless the job opts into global keys", async () => {
    const later = { input: { text: "keyed" }, key: "nightly", delay: 3_600_000 };
    const alices = await app.caller(ALICE).start.any({ name: "echo", ...later });
    const bobs = await app.caller(BOB).start.any({ name: "echo", ...later });
    expect(bobs).not.toBe(alices);
    expect(await app.caller(ALICE).start.any({ name: "echo", ...later })).toBe(alices);
    expect(await app.caller(BOB).start.any({ name: "echo", ...later })).toBe(bobs);
    // The global job shares one key space: the second enqueue gets the first one's id.
    const shared = { name: "shared", input: undefined, key: "one-for-all", delay: 3_600_000 };
    const first = await app.caller(ALICE).start.any(shared);
    expect(await app.caller(BOB).start.any(shared)).toBe(first);
    // ... which Bob still cannot read.
    await expect(state(first, BOB)).rejects.toMatchObject({ code: "NOT_FOUND" });
    for (const [id, ctx] of [[alices, ALICE], [bobs, BOB], [first, ALICE]] as const) await app.caller(ctx).$jobs.cancel({ id });
  });

  it("8. watchJob delivers each distinct state once", async () => {
    const alice = jobsClientAs<JobsRouter>(server, "alice");
    clients.push(alice);
    // Several messages: the job running, then cancelled (each once, with the status they came with).
    const id = await alice.trpc.start.wait.mutate();
    const seen: JobWatch[] = [];
    const stop = watchJob(alice, id, (w) => seen.push(w));
    await waitFor("running, live", () => seen.some((w) => w.job?.status === "active" && w.status === "live"), { timeoutMs: 30_000 });
    await app.caller(ALICE).$jobs.cancel({ id });
    await waitFor("cancelled", () => seen.some((w) => w.job?.status === "cancelled"), { timeoutMs: 30_000 });
    stop();
    // Each job state once (not once with the old live status and again with the new one) ...
    const jobs = seen.filter((w) => w.job).map((w) => JSON.stringify(w.job));
    expect(new Set(jobs).size).toBe(jobs.length);
    // ... and each (job, status, error) once.
    const keys = seen.map((w) => JSON.stringify([w.job ?? null, w.status, w.error ?? null]));
    expect(new Set(keys).size).toBe(keys.length);
    expect(seen.filter((w) => w.job).every((w) => w.status === "live")).toBe(true);
    expect(seen.length).toBeGreaterThan(1);
  });
});
