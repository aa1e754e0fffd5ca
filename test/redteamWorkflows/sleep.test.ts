/**
 * Red team, workflows: durable sleeps and deadlines. Odd durations (0, negative, NaN, fractional,
 * Infinity), sleepUntil in the past or invalid, deadlines past the jobs queue's longest delay
 * (366 days): each must park the run or fail it loudly, never leave it "running" with no step.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engines } from "../support/databases.ts";
import { finished, settle, waitingAt, waitRun, type RunState, appWithUsers, type AppWithUsers } from "./harness.ts";
import type { RedUser } from "./users.ts";
import type { RedApp } from "./app.ts";

const DAY = 24 * 3600_000;
const parkedOrFinished = (step: string) => (s: RunState) => waitingAt(step)(s) || finished(s);

describe.each(engines)("workflow sleeps (%s)", (engine) => {
  let env: AppWithUsers;
  let app: RedApp;
  let alice: RedUser;
  beforeAll(async () => {
    env = await appWithUsers(engine, ["alice"]);
    app = env.app;
    [alice] = env.users as [RedUser];
  });
  afterAll(() => env?.close());

  async function barrier(): Promise<void> {
    const id = await alice.client.trpc.start.mutate({ name: "steps", input: {} });
    await waitRun(app, id, finished, "barrier run");
  }

  it("a sleep never wakes before its deadline, and the step before it runs once", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "sleeper", input: { ms: 1500 } });
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("completed");
    const { started, woke } = state.output as { started: number; woke: number };
    expect(woke - started).toBeGreaterThanOrEqual(1500 - 50); // clockSkewMs
    expect(app.probe.count(id, "start")).toBe(1);
    expect(app.probe.count(id, "after")).toBe(1);
    const nap = state.steps.find((s) => s.name === "nap")!;
    expect(nap.kind).toBe("sleep");
    expect(nap.status).toBe("completed");
  });

  it.each([
    ["zero", 0],
    ["negative", -5000],
    ["fractional", 0.25],
    ["-Infinity", "-Infinity"],
  ])("a %s sleep completes at once (or fails loudly)", async (_what, ms) => {
    const id = await alice.client.trpc.start.mutate({ name: "sleeper", input: { ms } });
    const state = await waitRun(app, id, finished);
    expect(["completed", "failed"]).toContain(state.status);
    if (state.status === "failed") expect(state.error).toBeTruthy();
  });

  it.each([
    ["NaN", "NaN"],
    ["Infinity", "Infinity"],
  ])("a %s sleep fails the run loudly (or completes), never a stuck run", async (_what, ms) => {
    const id = await alice.client.trpc.start.mutate({ name: "sleeper", input: { ms } });
    await barrier();
    const state = await settle(app, id, parkedOrFinished("nap"));
    expect(finished(state), JSON.stringify(state)).toBe(true);
  });

  it("sleepUntil in the past continues at once; an invalid date fails loudly", async () => {
    const past = await alice.client.trpc.start.mutate({ name: "until", input: { at: Date.now() - 10 * DAY } });
    expect((await waitRun(app, past, finished)).status).toBe("completed");
    const zero = await alice.client.trpc.start.mutate({ name: "until", input: { at: 0 } });
    expect((await waitRun(app, zero, finished)).status).toBe("completed");
    const invalid = await alice.client.trpc.start.mutate({ name: "until", input: { at: "NaN" } });
    await barrier();
    const state = await settle(app, invalid, parkedOrFinished("until"));
    expect(state.status, JSON.stringify(state)).toBe("failed");
  });

  it("deadlines past the jobs queue's longest delay (366 days) park the run (waiting, with the deadline) or fail it loudly; never a run left 'running' with no step", async () => {
    const cases = [
      ["a 400-day sleep", "sleeper", { ms: 400 * DAY }, "nap"],
      ["a sleepUntil 400 days ahead", "until", { at: Date.now() + 400 * DAY }, "until"],
      ["a 400-day event timeout", "gate", { timeout: 400 * DAY }, "go"],
      ["a 100-year event timeout", "gate", { timeout: 36_500 * DAY }, "go"],
      ["an event timeout of 2^53 ms (past any Date)", "gate", { timeout: 2 ** 53 }, "go"],
      ["an event timeout of 1e300 ms", "gate", { timeout: 1e300 }, "go"],
    ] as const;
    // The control: 300 days is within the queue's limit and parks.
    const control = await alice.client.trpc.start.mutate({ name: "gate", input: { timeout: 300 * DAY } });
    const ids = await Promise.all(cases.map(([, name, input]) => alice.client.trpc.start.mutate({ name, input })));
    await barrier();
    expect(waitingAt("go")(await waitRun(app, control, parkedOrFinished("go")))).toBe(true);
    const states = await Promise.all(cases.map(([, , , step], i) => settle(app, ids[i]!, parkedOrFinished(step), 15_000)));
    const stuck = states
      .map((state, i) => ({ state, what: cases[i]![0], step: cases[i]![3] }))
      .filter(({ state, step }) => !parkedOrFinished(step)(state))
      .map(({ state, what }) => `${what}: ${state.status}, steps ${JSON.stringify(state.steps.map((s) => [s.name, s.status]))}`);
    expect(stuck).toEqual([]);
  });

  it("a sleep that is cancelled never wakes the run", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "sleeper", input: { ms: 800 } });
    await waitRun(app, id, waitingAt("nap"));
    await alice.client.trpc.$workflows.cancel.mutate({ id });
    // Past the deadline: a later sleeper with the same length completes, this one stays cancelled.
    const later = await alice.client.trpc.start.mutate({ name: "sleeper", input: { ms: 800 } });
    await waitRun(app, later, finished);
    const state = await app.tether.workflowRuntime.read(id, { id: alice.id, admin: false });
    expect(state.status).toBe("cancelled");
    expect(app.probe.count(id, "after")).toBe(0);
  });
});
