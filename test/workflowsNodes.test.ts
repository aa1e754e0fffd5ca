// Workflows across processes, on both engines: a node is SIGKILLed while one run is inside a
// step, one is between steps and one is in a durable sleep. Another node finishes all three: the
// run killed inside step b runs b again (attempt 2) and never a; the one killed between steps
// runs b once and never a; the sleeping one wakes no sooner than its persisted deadline. On
// Postgres the other node runs before the kill (two live nodes, one dies); on PGlite (one
// process's database) it starts after the kill on the same data directory.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createStore, type WorkflowState } from "@tether/server";
import { PrismaClient } from "../generated/prisma/client.ts";
import { buildWorkflowsApp, wfRuns } from "./fixtures/workflowsApp.ts";
import { userContext } from "./fixtures/securedApp.ts";
import { createTestDatabase, engines, type TestDatabase } from "./support/databases.ts";
import { startNodeProcess } from "./support/nodeProcess.ts";

describe.each(engines)("workflows across nodes on %s", (engine) => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("a SIGKILLed node's runs resume on another node at the right step; finished steps never run again", async () => {
    let database: TestDatabase | null = null;
    let dataDir: string | null = null;
    if (engine === "postgres") {
      database = await createTestDatabase("postgres");
      cleanups.push(() => database!.drop());
    } else {
      dataDir = mkdtempSync(join(tmpdir(), "tether-workflows-"));
      cleanups.push(async () => rmSync(dataDir!, { recursive: true, force: true }));
    }
    const target = { url: database?.url, dataDir: dataDir ?? undefined };
    const watch = ["inside", "between", "sleepy"];
    // The sleepy run's first step is held on A until B is up (on Postgres B starts before the
    // kill, which takes tens of seconds on a loaded machine): its sleep then starts right before
    // the kill, so a short sleep still ends after it.
    const sleepMs = 8_000;
    const releaseFile = join(mkdtempSync(join(tmpdir(), "tether-workflows-release-")), "release");
    cleanups.push(async () => rmSync(join(releaseFile, ".."), { recursive: true, force: true }));
    const a = startNodeProcess("test/support/workflowNode.ts", "WORKFLOW_NODE", { ...target, node: "A", start: true, sleepMs, releaseFile });
    cleanups.push(() => a.stop());
    await a.line(/^HELD inside/, 300_000);
    await a.line(/^HELD between/, 300_000);
    await a.line(/^HELD sleepy/, 300_000);

    let b = null as ReturnType<typeof startNodeProcess> | null;
    if (engine === "postgres") {
      b = startNodeProcess("test/support/workflowNode.ts", "WORKFLOW_NODE", { ...target, node: "B", watch });
      cleanups.push(() => b!.stop());
      await b.line(/^READY/, 300_000);
    }
    writeFileSync(releaseFile, "");
    await a.line(/^PARKED sleepy/, 300_000);
    await a.kill();
    const killedAt = Date.now();
    if (!b) {
      b = startNodeProcess("test/support/workflowNode.ts", "WORKFLOW_NODE", { ...target, node: "B", watch });
      cleanups.push(() => b!.stop());
    }
    for (const id of watch) await b.line(new RegExp(`^DONE ${id} completed`), 400_000);
    console.log(`workflows on ${engine}: the killed node's runs finished on B within ${Date.now() - killedAt} ms of SIGKILL (heartbeatSeconds 10)`);
    await b.stop();

    const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), ...target });
    const app = buildWorkflowsApp(store, { node: "reader" });
    try {
      const alice = app.caller(userContext("alice"));
      const runs = async (id: string) => (await wfRuns(store.sql, id)).map((r) => [r.step, r.node, r.attempt]);
      expect(await runs("inside")).toEqual([["a", "A", 1], ["b", "A", 1], ["b", "B", 2], ["c", "B", 1]]);
      expect(await runs("between")).toEqual([["a", "A", 1], ["b", "B", 1], ["c", "B", 1]]);

      const inside = (await alice.$workflows.get({ id: "inside" })) as WorkflowState;
      expect(inside.output).toMatchObject({ nodes: ["A", "B", "B"] });
      expect(inside.steps.map((s) => s.attempts)).toEqual([1, 2, 1]);
      const sleepy = (await alice.$workflows.get({ id: "sleepy" })) as WorkflowState;
      const nap = sleepy.steps.find((s) => s.name === "nap")!;
      const wakeAt = new Date(nap.wakeAt!).getTime();
      // The deadline came after the kill (checked, not assumed: a machine slow enough to pass it
      // first would test nothing here), and B woke the run.
      expect(killedAt).toBeLessThan(wakeAt);
      expect(await runs("sleepy")).toEqual([["before", "A", 1], ["after", "B", 1]]);
      // Woke on the deadline fixed before the kill: the step after it ran no sooner.
      expect(wakeAt - new Date(sleepy.steps.find((s) => s.name === "before")!.finishedAt!).getTime()).toBeGreaterThanOrEqual(sleepMs);
      expect(sleepy.output as number).toBeGreaterThanOrEqual(new Date(nap.wakeAt!).getTime() - 50);
    } finally {
      await app.tether.close();
      await store.close();
    }
  }, 1_200_000);
});
