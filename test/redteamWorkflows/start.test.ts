/**
 * Red team, workflows: starting runs. Idempotent by id (same transaction, concurrent
 * transactions), rollback starts nothing, bad names/inputs/ids are typed errors (never a 500).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engines } from "../support/databases.ts";
import { finished, waitRun, appWithUsers, type AppWithUsers } from "./harness.ts";
import { codeOf } from "./errors.ts";
import type { RedUser } from "./users.ts";
import type { RedApp } from "./app.ts";

describe.each(engines)("workflow start (%s)", (engine) => {
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

  it("a committed start runs each step once and completes", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "steps", input: { tag: "t" }, id: "smoke-1" });
    expect(id).toBe("smoke-1");
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("completed");
    expect(state.output).toEqual({ a: 1, b: 1 });
    expect(app.probe.count(id, "a")).toBe(1);
    expect(app.probe.count(id, "b")).toBe(1);
  });

  it("starting the same id twice in one transaction is one run (the first input wins)", async () => {
    const ids = await alice.client.trpc.startTwice.mutate({ id: "twice-1" });
    expect(ids).toEqual(["twice-1", "twice-1"]);
    const state = await waitRun(app, "twice-1", finished);
    expect(state.status).toBe("completed");
    expect(state.input).toEqual({ tag: "x" });
    expect(app.probe.count("twice-1", "a")).toBe(1);
  });

  it("eight concurrent transactions starting one id: all answer the id, one run, each step once", async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => alice.client.trpc.start.mutate({ name: "steps", input: { tag: `c${i}` }, id: "concurrent-1" })),
    );
    const rejected = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
    expect(rejected).toEqual([]);
    const state = await waitRun(app, "concurrent-1", finished);
    expect(state.status).toBe("completed");
    expect(app.probe.count("concurrent-1", "a")).toBe(1);
    expect(app.probe.count("concurrent-1", "b")).toBe(1);
  });

  it("a rolled-back start leaves no run, and the id can be started for real afterwards", async () => {
    expect(await codeOf(alice.client.trpc.start.mutate({ name: "steps", input: {}, id: "rolled-1", fail: true }))).toBe("CONFLICT");
    expect(await codeOf(alice.client.trpc.$workflows.get.query({ id: "rolled-1" }))).toBe("NOT_FOUND");
    // A barrier: a later committed run finishes; the rolled-back one never ran a step meanwhile.
    const barrier = await alice.client.trpc.start.mutate({ name: "steps", input: {}, id: "rolled-barrier" });
    await waitRun(app, barrier, finished);
    expect(app.probe.count("rolled-1", "a")).toBe(0);
    await alice.client.trpc.start.mutate({ name: "steps", input: {}, id: "rolled-1" });
    const state = await waitRun(app, "rolled-1", finished);
    expect(state.status).toBe("completed");
    expect(app.probe.count("rolled-1", "a")).toBe(1);
  });

  it("a generated id (no id given) is a fresh run each time", async () => {
    const a = await alice.client.trpc.start.mutate({ name: "steps", input: {} });
    const b = await alice.client.trpc.start.mutate({ name: "steps", input: {} });
    expect(a).not.toBe(b);
    expect((await waitRun(app, a, finished)).status).toBe("completed");
    expect((await waitRun(app, b, finished)).status).toBe("completed");
  });

  it.each([
    ["an unknown workflow name", "nope", {}],
    ["an empty workflow name", "", {}],
    ["a workflow name with NUL", "steps\u0000", {}],
    ["a number where the schema wants a string", "steps", { tag: 42 }],
    ["an object where the schema wants a number or a string", "sleeper", { ms: { soon: true } }],
    ["null input", "sleeper", null],
    ["input text with NUL", "steps", { tag: "nul\u0000byte" }],
    ["input text with a lone surrogate", "steps", { tag: "lone\ud800" }],
  ])("a start with %s is BAD_REQUEST, never a 500", async (_what, name, input) => {
    expect(await codeOf(alice.client.trpc.start.mutate({ name, input }))).toBe("BAD_REQUEST");
  });

  it("an input past maxValueBytes (1 MiB) is refused as the caller's error (BAD_REQUEST or 413), never a 500", async () => {
    expect(["BAD_REQUEST", "PAYLOAD_TOO_LARGE"]).toContain(await codeOf(alice.client.trpc.start.mutate({ name: "steps", input: { tag: "x".repeat(1_100_000) } })));
  });

  it.each([
    ["empty", ""],
    ["NUL", "a\u0000b"],
    ["lone surrogate", "a\ud800"],
    ["10,000 characters", "i".repeat(10_000)],
    ["a number", 42],
    ["an object", { id: "x" }],
    ["null", null],
  ])("a start id that is %s is BAD_REQUEST, never a 500", async (_what, id) => {
    expect(await codeOf(alice.client.trpc.start.mutate({ name: "steps", input: {}, id }))).toBe("BAD_REQUEST");
  });

  it.each([
    ["NUL", "a\u0000b"],
    ["lone surrogate", "a\ud800"],
    ["10,000 characters", "i".repeat(10_000)],
    ["empty", ""],
  ])("$workflows.get / cancel with an id that is %s: BAD_REQUEST or NOT_FOUND, never a 500", async (_what, id) => {
    expect(["BAD_REQUEST", "NOT_FOUND"]).toContain(await codeOf(alice.client.trpc.$workflows.get.query({ id })));
    expect(["BAD_REQUEST", "NOT_FOUND"]).toContain(await codeOf(alice.client.trpc.$workflows.cancel.mutate({ id })));
  });

  it("$workflows.get / cancel with a non-string id is BAD_REQUEST", async () => {
    const loose = alice.client.trpc.$workflows as unknown as { get: { query(i: unknown): Promise<unknown> }; cancel: { mutate(i: unknown): Promise<unknown> } };
    for (const input of [{ id: 1 }, { id: null }, {}, null, "x"]) {
      expect(await codeOf(loose.get.query(input))).toBe("BAD_REQUEST");
      expect(await codeOf(loose.cancel.mutate(input))).toBe("BAD_REQUEST");
    }
  });

  it("a user cannot take over another user's run by starting its id (no run of theirs, no read of hers)", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {}, id: "squat-1" });
    await waitRun(app, id, (s) => s.steps.some((step) => step.name === "go" && step.status === "waiting"));
    // Bob starts the same id (of another workflow): whatever he gets back, he cannot read her run.
    const answer = await codeOf(bob.client.trpc.start.mutate({ name: "steps", input: {}, id: "squat-1" }));
    expect(["OK", "CONFLICT"]).toContain(answer);
    expect(await codeOf(bob.client.trpc.$workflows.get.query({ id: "squat-1" }))).toBe("NOT_FOUND");
    const state = await app.tether.workflowRuntime.read("squat-1", { id: alice.id, admin: false });
    expect(state.name).toBe("gate");
  });

  it("a start by a different user or of a different workflow under an existing id is refused, not silently answered with that run's id", async () => {
    await alice.client.trpc.start.mutate({ name: "gate", input: {}, id: "squat-2" });
    // Jobs scope idempotency keys per user so one user cannot learn or share another's job; a
    // workflow id used by Alice, started by Bob as a different workflow, answers Bob with her run's
    // id and starts nothing of his: he cannot tell his run never existed.
    expect(await codeOf(bob.client.trpc.start.mutate({ name: "steps", input: {}, id: "squat-2" }))).toBe("CONFLICT");
  });
});
