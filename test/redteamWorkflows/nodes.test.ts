/**
 * Red team, workflows: two nodes on one Postgres database (PGlite is one process's database).
 * The same id started from both nodes at once is one run whose steps run once; runs spread over
 * both nodes each run every step once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, engines, type TestDatabase } from "../support/databases.ts";
import { buildApp, Probe, type RedApp } from "./app.ts";
import { finished, waitRun } from "./harness.ts";
import { signUp, type RedUser } from "./users.ts";

describe.skipIf(!engines.includes("postgres"))("workflows on two nodes (postgres)", () => {
  let database: TestDatabase;
  let a: RedApp;
  let b: RedApp;
  let aliceA: RedUser;
  const probe = new Probe();
  beforeAll(async () => {
    database = await createTestDatabase("postgres");
    a = await buildApp({ engine: "postgres", url: database.url, probe });
    b = await buildApp({ engine: "postgres", url: database.url, probe, migrate: false });
    aliceA = await signUp(a.url, "alice");
  });
  afterAll(async () => {
    aliceA?.client.close();
    await b?.close();
    await a?.close();
    await database?.drop();
  });

  it("one id started concurrently through both nodes (and both runtimes) is one run; each step once", async () => {
    for (let round = 0; round < 5; round++) {
      const id = `two-nodes-${round}`;
      const results = await Promise.allSettled([
        aliceA.client.trpc.start.mutate({ name: "steps", input: { tag: "a" }, id }),
        a.tether.workflowRuntime.client({ id: aliceA.id }).start("steps", { tag: "b" }, { id }),
        b.tether.workflowRuntime.client({ id: aliceA.id }).start("steps", { tag: "c" }, { id }),
        b.tether.workflowRuntime.client({ id: aliceA.id }).start("steps", { tag: "d" }, { id }),
      ]);
      expect(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      const state = await waitRun(b, id, finished);
      expect(state.status).toBe("completed");
      expect(probe.count(id, "a")).toBe(1);
      expect(probe.count(id, "b")).toBe(1);
    }
  });

  it("forty runs started on both nodes all complete, each step once", async () => {
    const ids = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).tether.workflowRuntime.client(null).start("steps", { tag: String(i) })),
    );
    for (const id of ids) {
      const state = await waitRun(a, id, finished);
      expect(state.status).toBe("completed");
      expect(probe.count(id, "a")).toBe(1);
      expect(probe.count(id, "b")).toBe(1);
    }
  });
});
