/**
 * Red team, workflows: who may see and cancel a run, and cancel races. Another user (or an
 * anonymous caller) gets NOT_FOUND from $workflows.get, $workflows.cancel and $live, with no value
 * ever; the owner's live view follows the run to the end; cancel during a step, twice, after the end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { watchWorkflow } from "@tether/client";
import { engines } from "../support/databases.ts";
import { finished, waitingAt, waitRun, until, appWithUsers, type AppWithUsers } from "./harness.ts";
import { codeOf } from "./errors.ts";
import { anonymous, type RedUser } from "./users.ts";
import type { RedApp } from "./app.ts";

describe.each(engines)("workflow access and cancel (%s)", (engine) => {
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

  async function barrier(): Promise<void> {
    const id = await alice.client.trpc.start.mutate({ name: "steps", input: {} });
    await waitRun(app, id, finished, "barrier run");
  }

  it("another user and anonymous callers get NOT_FOUND on get and cancel, and the run goes on", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {}, id: "alice-private" });
    await waitRun(app, id, waitingAt("go"));
    expect(await codeOf(bob.client.trpc.$workflows.get.query({ id }))).toBe("NOT_FOUND");
    expect(await codeOf(bob.client.trpc.$workflows.cancel.mutate({ id }))).toBe("NOT_FOUND");
    const anon = anonymous(app.url);
    try {
      expect(await codeOf(anon.trpc.$workflows.get.query({ id }))).toBe("NOT_FOUND");
      expect(await codeOf(anon.trpc.$workflows.cancel.mutate({ id }))).toBe("NOT_FOUND");
    } finally {
      anon.close();
    }
    // Unknown ids answer exactly the same.
    expect(await codeOf(bob.client.trpc.$workflows.get.query({ id: "alice-privatf" }))).toBe("NOT_FOUND");
    await alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 1 } });
    const state = await waitRun(app, id, finished);
    expect(state.status).toBe("completed");
    expect((await alice.client.trpc.$workflows.get.query({ id })).status).toBe("completed");
  });

  it("another user's $live subscription of the run fails NOT_FOUND and never receives a value, across the run's changes", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "gate", input: {}, id: "alice-live" });
    await waitRun(app, id, waitingAt("go"));
    const bobSaw: unknown[] = [];
    const bobErrors: string[] = [];
    const sub = bob.client.trpc.$live.subscribe(
      { path: "$workflows.get", input: { id } },
      { onData: (d) => bobSaw.push(d), onError: (e) => bobErrors.push((e.data as { code?: string } | undefined)?.code ?? e.message) },
    );
    // Alice's own watch: sees the run through to completed.
    const aliceSaw: string[] = [];
    const stop = watchWorkflow(alice.client, id, ({ workflow }) => {
      if (workflow) aliceSaw.push(workflow.status);
    });
    try {
      await until(() => bobErrors.length > 0 || bobSaw.length > 0, "bob's subscription answers");
      await until(() => aliceSaw.includes("waiting"), "alice sees waiting");
      await alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 2 } });
      await until(() => aliceSaw.includes("completed"), "alice sees completed");
      expect(bobErrors).toEqual(["NOT_FOUND"]);
      expect(bobSaw).toEqual([]);
    } finally {
      sub.unsubscribe();
      stop();
    }
  });

  it("the owner's live view shows steps with status, result and timing", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "steps", input: {} });
    await waitRun(app, id, finished);
    const state = await alice.client.trpc.$workflows.get.query({ id });
    expect(state.status).toBe("completed");
    expect(state.steps.map((s) => [s.name, s.status, s.result])).toEqual([
      ["a", "completed", 1],
      ["b", "completed", 1],
    ]);
    for (const s of state.steps) {
      expect(s.startedAt).toBeTruthy();
      expect(s.finishedAt).toBeTruthy();
    }
  });

  it("cancel during a running step aborts its signal; the step after never runs, even when the step then finishes", async () => {
    const id = await alice.client.trpc.start.mutate({ name: "blocker", input: {} });
    await until(() => app.probe.count(id, "block") === 1, "step running");
    const answer = await alice.client.trpc.$workflows.cancel.mutate({ id });
    expect(answer.status).toBe("cancelled");
    await until(() => app.probe.aborted.has(id), "signal aborted");
    app.probe.release(`${id}:block`);
    await barrier();
    const state = await app.tether.workflowRuntime.read(id, { id: alice.id, admin: false });
    expect(state.status).toBe("cancelled");
    expect(app.probe.count(id, "after")).toBe(0);
    expect(app.probe.count(id, "block")).toBe(1);
  });

  it("cancel released at the same moment as the step's own finish: the run ends cancelled or completed, with a consistent record", async () => {
    const ids = await Promise.all(Array.from({ length: 3 }, () => alice.client.trpc.start.mutate({ name: "blocker", input: {} })));
    for (const id of ids) await until(() => app.probe.count(id, "block") === 1, "step running");
    await Promise.all(ids.map(async (id) => {
      app.probe.release(`${id}:block`);
      await alice.client.trpc.$workflows.cancel.mutate({ id });
    }));
    await barrier();
    for (const id of ids) {
      const state = await waitRun(app, id, finished);
      expect(["cancelled", "completed"]).toContain(state.status);
      if (state.status === "cancelled") {
        // No step may be left running or waiting in a cancelled run.
        expect(state.steps.filter((s) => s.status === "running" || s.status === "waiting")).toEqual([]);
      } else {
        expect(app.probe.count(id, "after")).toBe(1);
      }
      expect(app.probe.count(id, "after")).toBeLessThanOrEqual(1);
    }
  });

  it("six runs with long steps run at once on one node (concurrency 8 resumes per node)", async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => alice.client.trpc.start.mutate({ name: "blocker", input: {} })));
    try {
      // With fewer slots than six the sixth step never starts (the steps hold theirs until released).
      await until(() => ids.every((id) => app.probe.count(id, "block") > 0), "all six steps started");
      expect(ids.map((id) => app.probe.count(id, "block"))).toEqual([1, 1, 1, 1, 1, 1]);
    } finally {
      for (const id of ids) app.probe.release(`${id}:block`);
      for (const id of ids) await waitRun(app, id, finished);
    }
  });

  it("cancel twice and cancel of a finished run return the state and change nothing", async () => {
    const a = await alice.client.trpc.start.mutate({ name: "gate", input: {} });
    await waitRun(app, a, waitingAt("go"));
    expect((await alice.client.trpc.$workflows.cancel.mutate({ id: a })).status).toBe("cancelled");
    expect((await alice.client.trpc.$workflows.cancel.mutate({ id: a })).status).toBe("cancelled");
    const b = await alice.client.trpc.start.mutate({ name: "steps", input: {} });
    await waitRun(app, b, finished);
    expect((await alice.client.trpc.$workflows.cancel.mutate({ id: b })).status).toBe("completed");
    expect((await alice.client.trpc.$workflows.get.query({ id: b })).status).toBe("completed");
  });

  it("cancel racing an event: the run ends cancelled or completed; a cancelled run ran no step after the wait", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await alice.client.trpc.start.mutate({ name: "gate", input: {} }));
    for (const id of ids) await waitRun(app, id, waitingAt("go"));
    await Promise.all(ids.flatMap((id) => [alice.client.trpc.send.mutate({ id, name: "go", payload: { n: 1 } }), alice.client.trpc.$workflows.cancel.mutate({ id })]));
    await barrier();
    for (const id of ids) {
      const state = await waitRun(app, id, finished);
      expect(["cancelled", "completed"]).toContain(state.status);
      if (state.status === "cancelled") expect(state.steps.filter((s) => s.status === "running" || s.status === "waiting")).toEqual([]);
    }
  });

  it("a run started by an anonymous caller (owner null) is not readable by any signed-in user", async () => {
    const anon = anonymous(app.url);
    try {
      const answer = await codeOf(anon.trpc.anonStart.mutate({ id: "anon-run" }));
      if (answer !== "OK") return; // refusing anonymous starts is fine too
      await waitRun(app, "anon-run", finished);
      expect(await codeOf(bob.client.trpc.$workflows.get.query({ id: "anon-run" }))).toBe("NOT_FOUND");
      expect(await codeOf(anon.trpc.$workflows.get.query({ id: "anon-run" }))).toBe("NOT_FOUND");
    } finally {
      anon.close();
    }
  });
});
