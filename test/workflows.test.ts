// Durable workflows on both engines: a run's steps persist and never re-run on replay; the
// starting mutation's rollback leaves nothing and one id starts one run; a durable sleep wakes no
// sooner than its persisted deadline; events sent before or after the wait are taken, a wait
// times out with null; cancel (owner only) stops a run; only the owner (or an admin) reads or
// watches a run, live; a changed step order fails the run loudly; a step's error fails it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkflowState } from "@tether/server";
import { buildWorkflowsApp, codeVersion, createWorkflowsStore, wfRuns } from "./fixtures/workflowsApp.ts";
import { userContext } from "./fixtures/securedApp.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { collectLive } from "./support/liveCollector.ts";
import { waitFor } from "./support/waitFor.ts";

const ALICE = userContext("alice");
const BOB = userContext("bob");
const ADMIN = userContext("root", "admin");

describe.each(engines)("workflows on %s", (engine) => {
  let store: AppStore;
  let close: () => Promise<void>;
  let app: ReturnType<typeof buildWorkflowsApp>;
  /** Steps held by the test: `${workflowId}:${step}` → release. */
  const gates = new Map<string, () => void>();
  const holding = new Set<string>();

  beforeAll(async () => {
    ({ store, close } = await createWorkflowsStore(engine));
    app = buildWorkflowsApp(store, {
      jobs: { limits: { heartbeatRefreshSeconds: 0.2, pollingIntervalSeconds: 0.5 } },
      onStep: (workflowId, step) => {
        const key = `${workflowId}:${step}`;
        if (!holding.has(key)) return;
        return new Promise<void>((release) => gates.set(key, release));
      },
    });
    await app.tether.start();
  });
  afterAll(async () => {
    await app?.tether.close();
    await close?.();
  });

  const state = (id: string, ctx = ALICE) => app.caller(ctx).$workflows.get({ id }) as Promise<WorkflowState>;
  const settled = async (id: string, ctx = ALICE) => {
    let last: WorkflowState | null = null;
    await waitFor(`workflow ${id} finished`, async () => ["completed", "failed", "cancelled"].includes((last = await state(id, ctx)).status), { timeoutMs: 30_000 });
    return last!;
  };
  const stepOf = (s: WorkflowState, name: string) => s.steps.find((x) => x.name === name)!;

  it("runs its steps once each, persists their results, and returns the output", async () => {
    const id = await app.caller(ALICE).start.three({ tag: "hello" });
    const done = await settled(id);
    expect(done).toMatchObject({
      id,
      name: "three",
      status: "completed",
      input: { tag: "hello" },
      output: { tag: "hello", by: "alice", nodes: ["main", "main", "main"], key: `${id}:c` },
      error: null,
      currentStep: "c",
    });
    expect(done.steps.map((s) => [s.index, s.name, s.kind, s.status, s.attempts])).toEqual([
      [0, "a", "run", "completed", 1],
      [1, "b", "run", "completed", 1],
      [2, "c", "run", "completed", 1],
    ]);
    expect(stepOf(done, "a").result).toEqual({ step: "a", node: "main" });
    expect((await wfRuns(store.sql, id)).map((r) => r.step)).toEqual(["a", "b", "c"]);
  });

  it("a rolled-back start leaves nothing; the same id twice is one run; bad input is BAD_REQUEST", async () => {
    await expect(app.caller(ALICE).start.three({ tag: "x", id: "rolled-back", fail: true })).rejects.toThrow(/failed after start/);
    const leftovers = await store.sql.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM "_tether_workflows" WHERE id = 'rolled-back')::int + (SELECT count(*) FROM wf_runs WHERE workflow_id = 'rolled-back')::int AS n`,
    );
    expect(leftovers[0]!.n).toBe(0);
    await expect(state("rolled-back")).rejects.toMatchObject({ code: "NOT_FOUND" });

    const first = await app.caller(ALICE).start.three({ tag: "once", id: "order-42" });
    const second = await app.caller(ALICE).start.three({ tag: "twice", id: "order-42" });
    expect([first, second]).toEqual(["order-42", "order-42"]);
    const done = await settled("order-42");
    expect(done.output).toMatchObject({ tag: "once" });
    const third = await app.caller(ALICE).start.three({ tag: "thrice", id: "order-42" });
    expect(third).toBe("order-42");
    // A barrier run started after the duplicates finishes; the duplicates never ran a step.
    await settled(await app.caller(ALICE).start.three({ tag: "barrier" }));
    expect((await wfRuns(store.sql, "order-42")).map((r) => r.step)).toEqual(["a", "b", "c"]);

    await expect(app.caller(ALICE).start.any({ name: "three", input: { tag: 1 } })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(app.caller(ALICE).start.any({ name: "waiter", input: {}, id: "order-42" })).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(app.caller(ALICE).workflows.three({ tag: "direct" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("a durable sleep parks the run and wakes it no sooner than the persisted deadline", async () => {
    const id = await app.caller(ALICE).start.any({ name: "sleeper", input: { ms: 600 } });
    await waitFor("parked", async () => (await state(id)).status === "waiting", { timeoutMs: 20_000 });
    const parked = await state(id);
    expect(stepOf(parked, "nap")).toMatchObject({ kind: "sleep", status: "waiting" });
    const done = await settled(id);
    expect(done.status).toBe("completed");
    const nap = stepOf(done, "nap");
    const wakeAt = new Date(nap.wakeAt!).getTime();
    // The deadline was fixed when the sleep was reached: 600 ms after the step before it finished.
    expect(wakeAt - new Date(stepOf(done, "before").finishedAt!).getTime()).toBeGreaterThanOrEqual(600);
    // The step after the sleep ran at or after the deadline (its result is its Date.now()).
    expect(done.output as number).toBeGreaterThanOrEqual(wakeAt - 50);
    expect((await wfRuns(store.sql, id)).map((r) => r.step)).toEqual(["before", "after"]);
  });

  it("an event sent after the wait resumes the run; finished steps are not run again", async () => {
    const id = await app.caller(ALICE).start.any({ name: "waiter", input: {} });
    await waitFor("waiting", async () => stepOf(await state(id), "go")?.status === "waiting", { timeoutMs: 20_000 });
    // A rolled-back send sends nothing.
    await expect(app.caller(BOB).events.send({ workflowId: id, name: "go", payload: { value: 0 }, fail: true })).rejects.toThrow(/failed after send/);
    await app.caller(BOB).events.send({ workflowId: id, name: "go", payload: { value: 7 } });
    const done = await settled(id);
    expect(done).toMatchObject({ status: "completed", output: { payload: { value: 7 } } });
    expect(stepOf(done, "go")).toMatchObject({ kind: "event", status: "completed", result: { value: 7 } });
    // Step "a" ran once although the run was replayed after the event.
    expect((await wfRuns(store.sql, id)).map((r) => r.step)).toEqual(["a", "after"]);
    await expect(app.caller(BOB).events.send({ workflowId: "no-such-run", name: "go", payload: null })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("an event sent before the wait is kept and taken when the wait comes", async () => {
    const id = "early-event";
    holding.add(`${id}:a`);
    await app.caller(ALICE).start.any({ name: "waiter", input: {}, id });
    await waitFor("step a held", () => gates.has(`${id}:a`), { timeoutMs: 20_000 });
    await app.caller(ALICE).events.send({ workflowId: id, name: "go", payload: { value: 1 } });
    await app.caller(ALICE).events.send({ workflowId: id, name: "go", payload: { value: 2 } });
    gates.get(`${id}:a`)!();
    const done = await settled(id);
    // The first event of the name is taken; the second stays for a later wait.
    expect(done.output).toEqual({ payload: { value: 1 } });
  });

  it("a wait times out with null after its timeout", async () => {
    const id = await app.caller(ALICE).start.any({ name: "waiter", input: { timeout: 400 } });
    const done = await settled(id);
    expect(done).toMatchObject({ status: "completed", output: { payload: null } });
    const go = stepOf(done, "go");
    expect(go.result).toBeNull();
    expect(new Date(go.wakeAt!).getTime() - new Date(stepOf(done, "a").finishedAt!).getTime()).toBeGreaterThanOrEqual(400);
    expect(new Date(go.finishedAt!).getTime()).toBeGreaterThanOrEqual(new Date(go.wakeAt!).getTime() - 50);
  });

  it("cancel stops a waiting run (owner or admin only); a later event does nothing", async () => {
    const id = await app.caller(ALICE).start.any({ name: "waiter", input: {} });
    await waitFor("waiting", async () => (await state(id)).status === "waiting", { timeoutMs: 20_000 });
    await expect(app.caller(BOB).$workflows.cancel({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    const cancelled = await app.caller(ALICE).$workflows.cancel({ id });
    expect(cancelled).toMatchObject({ status: "cancelled", error: "cancelled" });
    expect(stepOf(cancelled, "go")).toMatchObject({ status: "failed", error: "cancelled" });
    await app.caller(ALICE).events.send({ workflowId: id, name: "go", payload: { value: 3 } });
    // Barrier: a run started after the event finished; the cancelled one never went on.
    await settled(await app.caller(ALICE).start.three({ tag: "barrier 2" }));
    expect((await state(id)).status).toBe("cancelled");
    expect((await wfRuns(store.sql, id)).map((r) => r.step)).toEqual(["a"]);
    expect((await app.caller(ADMIN).$workflows.cancel({ id })).status).toBe("cancelled");
  });

  it("the owner watches steps live; another user's watch and read are NOT_FOUND, an admin's read works", async () => {
    const id = "watched";
    holding.add(`${id}:b`);
    await app.caller(ALICE).start.three({ tag: "live", id });
    const controller = new AbortController();
    const live = collectLive<WorkflowState>((await app.caller(ALICE, controller.signal).$live({ path: "$workflows.get", input: { id } })) as AsyncIterable<unknown>, controller);
    const otherController = new AbortController();
    const other = collectLive<WorkflowState>(
      (await app.caller(BOB, otherController.signal).$live({ path: "$workflows.get", input: { id } })) as AsyncIterable<unknown>,
      otherController,
    );
    await waitFor("step b held", () => gates.has(`${id}:b`), { timeoutMs: 20_000 });
    await live.until(() => live.state.data?.currentStep === "b" && live.state.data.steps[1]?.status === "running", 20_000);
    expect(live.state.data!.steps[0]).toMatchObject({ name: "a", status: "completed" });
    gates.get(`${id}:b`)!();
    await live.until(() => live.state.data?.status === "completed", 20_000);
    expect(live.state.data!.steps.map((s) => s.status)).toEqual(["completed", "completed", "completed"]);
    await other.until(() => other.state.ended);
    expect(other.state.error).toMatchObject({ code: "NOT_FOUND" });
    expect(other.state.messages).toEqual([]);
    await live.stop();
    await expect(state(id, BOB)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(state(id, { user: null, session: null })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await state(id, ADMIN)).status).toBe("completed");
  });

  it("a changed step order fails the run loudly on replay; a step's error fails the run", async () => {
    codeVersion.current = "v1";
    const id = await app.caller(ALICE).start.any({ name: "changing", input: null });
    await waitFor("waiting", async () => (await state(id)).status === "waiting", { timeoutMs: 20_000 });
    // New code while the run waits before the changed step: no mismatch (that step never ran).
    codeVersion.current = "v2";
    await app.caller(ALICE).events.send({ workflowId: id, name: "go", payload: null });
    const done = await settled(id);
    expect(done.status).toBe("completed");
    expect(done.steps.map((s) => s.name)).toEqual(["first", "go", "renamed"]);

    // A mismatch: a run past "second" replayed by code that calls it "renamed".
    codeVersion.current = "v1";
    const id2 = await app.caller(ALICE).start.any({ name: "changing", input: null });
    await waitFor("waiting", async () => (await state(id2)).status === "waiting", { timeoutMs: 20_000 });
    await app.caller(ALICE).events.send({ workflowId: id2, name: "go", payload: null });
    await settled(id2);
    // Its persisted steps (copied to a run still waiting) replayed by the v2 code: step 2 differs.
    const id3 = "replayed-under-v2";
    await store.sql.query(`INSERT INTO "_tether_workflows" (id, name, owner_id, input, status) SELECT $2, name, owner_id, input, 'waiting' FROM "_tether_workflows" WHERE id = $1`, [id2, id3]);
    await store.sql.query(
      `INSERT INTO "_tether_workflow_steps" (id, workflow_id, idx, name, kind, status, result, attempts) SELECT $2 || ':' || idx, $2, idx, name, kind, status, result, attempts FROM "_tether_workflow_steps" WHERE workflow_id = $1`,
      [id2, id3],
    );
    codeVersion.current = "v2";
    await app.tether.workflowRuntime.client(null).sendEvent(id3, "poke", null);
    const failed = await settled(id3);
    codeVersion.current = "v1";
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/non-deterministic replay: step 2 was run "second" when it ran, now run "renamed"/);
    // Nothing ran under the mismatch.
    expect((await wfRuns(store.sql, id3)).map((r) => r.step)).toEqual([]);

    const boom = await app.caller(ALICE).start.any({ name: "failing", input: null });
    const broken = await settled(boom);
    expect(broken).toMatchObject({ status: "failed", error: 'step "boom" failed: card declined' });
    expect(stepOf(broken, "boom")).toMatchObject({ status: "failed", error: "card declined", attempts: 1 });
  });
});

// A deadline further off than the queue's longest delay is reached in hops (each hop's resume
// enqueues the next). Here the longest delay is 400 ms, so a 1.5 s sleep takes several hops.
describe.each(engines)("workflow deadlines past the queue's longest delay, on %s", (engine) => {
  let store: AppStore;
  let close: () => Promise<void>;
  let app: ReturnType<typeof buildWorkflowsApp>;
  beforeAll(async () => {
    ({ store, close } = await createWorkflowsStore(engine));
    app = buildWorkflowsApp(store, { jobs: { limits: { maxDelayMs: 400, heartbeatRefreshSeconds: 0.2, pollingIntervalSeconds: 0.5 } } });
    await app.tether.start();
  });
  afterAll(async () => {
    await app?.tether.close();
    await close?.();
  });

  it("a sleep longer than maxDelayMs parks, hops, and wakes no sooner than its deadline", async () => {
    const id = await app.caller(ALICE).start.any({ name: "sleeper", input: { ms: 1500 } });
    let done: WorkflowState | null = null;
    await waitFor(`workflow ${id} finished`, async () => ["completed", "failed", "cancelled"].includes((done = (await app.caller(ALICE).$workflows.get({ id })) as WorkflowState).status), { timeoutMs: 60_000 });
    expect(done!.status).toBe("completed");
    const nap = done!.steps.find((s) => s.name === "nap")!;
    const wakeAt = new Date(nap.wakeAt!).getTime();
    expect(wakeAt - new Date(done!.steps.find((s) => s.name === "before")!.finishedAt!).getTime()).toBeGreaterThanOrEqual(1500);
    expect(done!.output as number).toBeGreaterThanOrEqual(wakeAt - 50);
    const hops = await store.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'tether._tether.workflow' AND data->'input'->>'workflowId' = $1 AND data->'input' ? 'until'`,
      [id],
    );
    expect(hops[0]!.n).toBeGreaterThanOrEqual(2);
  });
});
