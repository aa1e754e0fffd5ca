/**
 * Red team, workflows: events. Sent before the wait, twice, in a rolled-back transaction, to runs
 * that are finished, cancelled, unknown or another user's; odd payloads and names; odd timeouts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engines } from "../support/databases.ts";
import { finished, waitRun, type RunState, appWithUsers, type AppWithUsers } from "./harness.ts";
import { codeOf } from "./errors.ts";
import type { RedUser } from "./users.ts";
import type { RedApp } from "./app.ts";

const waiting = (name: string) => (s: RunState) => s.steps.some((step) => step.name === name && step.status === "waiting");

describe.each(engines)("workflow events (%s)", (engine) => {
  let env: AppWithUsers;
  let app: RedApp;
  let alice: RedUser;
  let bob: RedUser;
  beforeAll(async () => {
    env = await appWithUsers(engine, ["alice", "bob"]);
    app = env.app;
    [alice, bob] = env.users as [RedUser, RedUser];
  });
  afterAll(() => env?.close());

  /** A run that finishes proves the runtime got past everything committed before it. */
  async function barrier(): Promise<void> {
    const id = await alice.client.trpc.start.mutate({ name: "steps", input: {} });
    await waitRun(app, id, finished, "barrier run");
  }

  it("an event sent in the start's own transaction (before the wait) is kept and consumed", async () => {
    await alice.client.trpc.startAndSend.mutate({ id: "early-1", n: 7 });
    const state = await waitRun(app, "early-1", finished);
    expect(state.status).toBe("completed");
    expect(state.output).toEqual({ payload: { n: 7 } });
  });

  it("events of a later wait sent first are kept until that wait; order of names is respected", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "twoEvents", input: {}, id: "two-1" });
    await alice.client.trpc.send.mutate({ id, name: "e2", payload: { n: 2 } });
    await alice.client.trpc.send.mutate({ id, name: "e1", payload: { n: 1 } });
    const state = await waitRun(app, id, finished);
    expect(state.output).toEqual({ first: { n: 1 }, second: { n: 2 } });
  });

  it("an event sent twice wakes the wait once; the step after it runs once", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {}, id: "twice-ev" });
    await waitRun(app, id, waiting("go"));
    await alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 1 }, times: 2 });
    await alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 2 } });
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("completed");
    expect(state.output).toEqual({ payload: { n: 1 } });
    await barrier();
    expect(app.probe.count(id, "after")).toBe(1);
    expect(app.probe.count(id, "before")).toBe(1);
  });

  it("a rolled-back sendEvent neither wakes the run nor leaves its payload behind", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {}, id: "rb-ev" });
    await waitRun(app, id, waiting("go"));
    expect(await codeOf(alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 666 }, fail: true }))).toBe("CONFLICT");
    await barrier();
    const mid = await app.tether.workflowRuntime.read(id, { id: alice.id, admin: false });
    expect(mid.status).toBe("waiting");
    expect(app.probe.count(id, "after")).toBe(0);
    await alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 1 } });
    const state = await waitRun(app, id, finished);
    expect(state.output).toEqual({ payload: { n: 1 } });
  });

  it("an event to a finished run changes nothing and is not a 500", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "steps", input: {}, id: "done-ev" });
    await waitRun(app, id, finished);
    expect(["OK", "NOT_FOUND", "BAD_REQUEST", "CONFLICT"]).toContain(await codeOf(alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 1 } })));
    await barrier();
    const state = await app.tether.workflowRuntime.read(id, { id: alice.id, admin: false });
    expect(state.status).toBe("completed");
    expect(app.probe.count(id, "a")).toBe(1);
  });

  it("an event to a cancelled run does not revive it", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {}, id: "cancel-ev" });
    await waitRun(app, id, waiting("go"));
    await alice.client.trpc.$workflows.cancel.mutate({ id });
    expect(["OK", "NOT_FOUND", "BAD_REQUEST", "CONFLICT"]).toContain(await codeOf(alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 1 } })));
    await barrier();
    const state = await app.tether.workflowRuntime.read(id, { id: alice.id, admin: false });
    expect(state.status).toBe("cancelled");
    expect(app.probe.count(id, "after")).toBe(0);
  });

  it("an event to an unknown run id is a typed answer, never a 500", async () => {
    expect(["OK", "NOT_FOUND"]).toContain(await codeOf(alice.client.trpc.send.mutate({ id: "no-such-run", name: "go", payload: {} })));
  });

  it.each([
    ["an empty event name", ""],
    ["an event name with NUL", "g\u0000o"],
    ["an event name of 10,000 characters", "n".repeat(10_000)],
    ["an event name with a lone surrogate", "go\ud800"],
  ])("%s is BAD_REQUEST", async (_what, name) => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {} });
    expect(await codeOf(alice.client.trpc.send.mutate({ id, name, payload: {} }))).toBe("BAD_REQUEST");
  });

  it.each([
    ["a payload with NUL", "nul", ["BAD_REQUEST"]],
    ["a payload with a lone surrogate", "surrogate", ["BAD_REQUEST"]],
    ["a payload over 1 MiB", "huge", ["BAD_REQUEST"]],
    // Built by the server's own code: a programming error, so a 500 is fair; it must still refuse.
    ["a BigInt payload", "bigint", ["BAD_REQUEST", "INTERNAL_SERVER_ERROR"]],
    ["a cyclic payload", "cycle", ["BAD_REQUEST", "INTERNAL_SERVER_ERROR"]],
  ])(
    "%s is refused and the run keeps waiting",
    async (_what, kind, codes) => {
      const id = await alice.client.trpc.start.mutate({ name: "gate", input: {} });
      await waitRun(app, id, waiting("go"));
      expect(codes).toContain(await codeOf(alice.client.trpc.sendOdd.mutate({ id, kind })));
      await barrier();
      expect((await app.tether.workflowRuntime.read(id, { id: alice.id, admin: false })).status).toBe("waiting");
      await alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 3 } });
      expect((await waitRun(app, id, finished)).output).toEqual({ payload: { n: 3 } });
    },
  );

  it("payloads that are not JSON objects (undefined, a Date, NaN) arrive as their JSON round trip", async () => {
    for (const [kind, expected] of [["undefined", null], ["date", "1970-01-01T00:00:00.000Z"], ["nan", null]] as const) {
      const id = await alice.client.trpc.start.mutate({ name: "gate", input: {} });
      await waitRun(app, id, waiting("go"));
      expect(await codeOf(alice.client.trpc.sendOdd.mutate({ id, kind }))).toBe("OK");
      const state = await waitRun(app, id, finished);
      expect(state.status, kind).toBe("completed");
      expect(state.output, kind).toEqual({ payload: expected });
    }
  });

  it("a wait with a timeout returns null on timeout, and a late event is not lost for nobody (the run completes)", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: { timeout: 300 } });
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("completed");
    expect(state.output).toEqual({ payload: null });
    expect(app.probe.count(id, "after")).toBe(1);
  });

  it.each([
    ["zero", 0],
    ["negative", -1000],
    ["NaN", "NaN"],
    ["fractional", 0.5],
    ["-Infinity", "-Infinity"],
  ])("a %s timeout ends the wait (null) or fails the run loudly; never a run stuck waiting", async (_what, timeout) => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: { timeout } });
    const state = await waitRun(app, id, finished, "run finishes");
    if (state.status === "completed") expect(state.output).toEqual({ payload: null });
    else expect(state.status).toBe("failed");
  });

  it("an Infinity timeout fails the run loudly", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: { timeout: "Infinity" } });
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("failed");
    expect(state.error).toMatch(/timeout/);
  });

  it("an event racing its wait's timeout: the run completes once, and a null answer leaves the event unconsumed for nobody else", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await alice.client.trpc.start.mutate({ name: "gate", input: { timeout: 400 + i * 40 } }));
    for (const id of ids) await waitRun(app, id, (s) => waiting("go")(s) || finished(s));
    await Promise.all(ids.map((id) => alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 1 } })));
    for (const id of ids) {
      const state = await waitRun(app, id, finished);
      expect(state.status).toBe("completed");
      expect([null, { n: 1 }]).toContainEqual((state.output as { payload: unknown }).payload);
    }
    await barrier();
    for (const id of ids) expect(app.probe.count(id, "after")).toBe(1);
  });

  it("the server-built event payload past maxValueBytes is BAD_REQUEST", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {} });
    expect(await codeOf(alice.client.trpc.sendBig.mutate({ id }))).toBe("BAD_REQUEST");
  });

  it("a server-built start input past maxValueBytes is BAD_REQUEST", async () => {
    expect(await codeOf(alice.client.trpc.startBig.mutate({ id: "big-input" }))).toBe("BAD_REQUEST");
  });
});
