/**
 * Red team, workflows: step values and replay. Non-JSON results and throws of non-Errors, results
 * past maxValueBytes, duplicate step names, step order/kind changed between replays (must fail
 * loudly), steps in Promise.all (must not trip the check), the first run seeing the JSON round trip.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engines } from "../support/databases.ts";
import { finished, settle, waitingAt, waitRun, appWithUsers, type AppWithUsers } from "./harness.ts";
import type { RedUser } from "./users.ts";
import type { RedApp } from "./app.ts";

describe.each(engines)("workflow values and replay (%s)", (engine) => {
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

  it.each([
    ["undefined", null],
    ["date", "1970-01-01T00:00:00.000Z"],
    ["nan", null],
    ["map", {}],
  ])("a step returning %s gives the body its JSON round trip on the first run", async (kind, expected) => {
    const id = await alice.client.trpc.start.mutate({ name: "weird", input: { kind } });
    const state = await waitRun(app, id, finished);
    expect(state.status, state.error ?? "").toBe("completed");
    expect(state.output).toEqual({ value: expected });
    expect(app.probe.count(id, "odd")).toBe(1);
  });

  it.each(["bigint", "cycle", "huge", "nul", "surrogate"])("a step returning a value that cannot be stored (%s) fails the step (and the run) loudly, once", async (kind) => {
    const id = await alice.client.trpc.start.mutate({ name: "weird", input: { kind } });
    await barrier();
    // Bounded: a working runtime fails it in the first resume; a broken one re-runs the step for ever.
    const state = await settle(app, id, finished, 15_000);
    expect(state.status, `steps ${JSON.stringify(state.steps.map((s) => [s.name, s.status, s.attempts]))}, step ran ${app.probe.count(id, "odd")} times`).toBe("failed");
    expect(state.error).toBeTruthy();
    const odd = state.steps.find((s) => s.name === "odd")!;
    expect(odd.status).toBe("failed");
    expect(app.probe.count(id, "after")).toBe(0);
    await barrier();
    expect(app.probe.count(id, "odd")).toBe(1);
  });

  it.each(["throwString", "throwNull", "throwUndefined", "throwObject", "throwHuge", "throwNul"])(
    "a step throwing %s fails the run with a stored, bounded message; the node keeps working",
    async (kind) => {
      const id = await alice.client.trpc.start.mutate({ name: "weird", input: { kind } });
      await barrier();
      const state = await settle(app, id, finished, 15_000);
      expect(state.status, `steps ${JSON.stringify(state.steps.map((s) => [s.name, s.status, s.attempts]))}, step ran ${app.probe.count(id, "odd")} times`).toBe("failed");
      expect(typeof state.error).toBe("string");
      expect(state.error!.length).toBeLessThanOrEqual(2000 + 200);
      expect(state.error).not.toContain("\u0000");
      await barrier();
      expect(app.probe.count(id, "odd")).toBe(1);
    },
  );

  it.each(["bigint", "cycle", "huge", "nul", "throwString", "undefined"])("a body returning / throwing %s ends the run (completed or failed), never stuck", async (kind) => {
    const id = await alice.client.trpc.start.mutate({ name: "weirdOutput", input: { kind } });
    await barrier();
    const state = await settle(app, id, finished, 15_000);
    expect(["completed", "failed"]).toContain(state.status);
    if (kind === "undefined") expect(state.status).toBe("completed");
  });

  it("a caught step failure reaches the body as a WorkflowStepError, and the run goes on", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "catcher", input: {} });
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("completed");
    expect(state.output).toMatch(/^WorkflowStepError:.*boom!/);
    expect(app.probe.count(id, "boom")).toBe(1);
  });

  it("a step name used twice fails the run loudly; the second never runs", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "dup", input: {} });
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("failed");
    expect(state.error).toMatch(/same|repeat|unique|duplicate|twice|already/i);
    expect(app.probe.count(id, "same-2")).toBe(0);
  });

  it("a step renamed between replays fails the run with the non-deterministic replay message", async () => {
    app.probe.version = "v1";
    const id = await alice.client.trpc.start.mutate({ name: "changing", input: {} });
    await waitRun(app, id, waitingAt("go"));
    app.probe.version = "v2";
    try {
      await alice.client.trpc.send.mutate({ id, name: "go", payload: {} });
      const state = await waitRun(app, id, finished);
      expect(state.status).toBe("failed");
      expect(state.error).toMatch(/non-deterministic replay/);
      expect(app.probe.count(id, "first-v2")).toBe(0);
      expect(app.probe.count(id, "last")).toBe(0);
    } finally {
      app.probe.version = "v1";
    }
  });

  it("a step whose kind changed between replays (run → sleep) fails loudly", async () => {
    app.probe.version = "v1";
    const id = await alice.client.trpc.start.mutate({ name: "changingKind", input: {} });
    await waitRun(app, id, waitingAt("go"));
    app.probe.version = "v2";
    try {
      await alice.client.trpc.send.mutate({ id, name: "go", payload: {} });
      const state = await waitRun(app, id, finished);
      expect(state.status).toBe("failed");
      expect(state.error).toMatch(/non-deterministic replay/);
    } finally {
      app.probe.version = "v1";
    }
  });

  it("steps in Promise.all finishing out of order replay fine: each runs once, no false non-determinism", async () => {
    const ids = await Promise.all(Array.from({ length: 4 }, () => alice.client.trpc.start.mutate({ name: "parallel", input: {} })));
    for (const id of ids) await waitRun(app, id, waitingAt("go"));
    for (const id of ids) await alice.client.trpc.send.mutate({ id, name: "go", payload: {} });
    for (const id of ids) {
      const state = await waitRun(app, id, finished);
      expect(state.status, state.error ?? "").toBe("completed");
      expect(state.output).toEqual([0, 1, 2]);
      for (const step of ["p0", "p1", "p2", "after"]) expect(app.probe.count(id, step), step).toBe(1);
    }
  });
});
