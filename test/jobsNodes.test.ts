// Jobs across nodes, on both engines: three nodes competing for committed jobs run each exactly
// once; a cron schedule on two nodes fires once per tick (driven by a shared pg-boss TestClock, so
// minutes pass in milliseconds); a SIGKILLed worker's job runs again on another process once its
// heartbeat lapses, and a job that had finished never runs again. On PGlite the "nodes" of the
// first two tests share one in-process database (PGlite is one process's database), and the
// SIGKILL test restarts the killed process on the same data directory.
import { spawn, type ChildProcess } from "node:child_process";
import { killChild, stopChild } from "./support/childProcess.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TestClock } from "pg-boss";
import { createStore } from "@tether/server";
import { PrismaClient } from "../generated/prisma/client.ts";
import { buildJobsApp, createJobsStore, jobRuns } from "./fixtures/jobsApp.ts";
import { userContext } from "./fixtures/securedApp.ts";
import { createTestDatabase, engines, type AppStore, type TestDatabase } from "./support/databases.ts";
import { waitFor } from "./support/waitFor.ts";

const ALICE = userContext("alice");

/** `count` stores on one fresh database: one shared PGlite instance, or a pool each on Postgres. */
async function nodesOn(engine: "pglite" | "postgres", count: number) {
  const first = await createJobsStore(engine);
  const url = first.store.driver.engine === "postgres" ? first.store.driver.url : undefined;
  const stores: AppStore[] = [first.store];
  for (let i = 1; i < count; i += 1) {
    stores.push(
      engine === "pglite"
        ? first.store
        : await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url }),
    );
  }
  return {
    stores,
    async close() {
      for (const store of stores.slice(1)) if (store !== first.store) await store.close();
      await first.close();
    },
  };
}

describe.each(engines)("jobs across nodes on %s", (engine) => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("three nodes competing: every committed job runs exactly once", async () => {
    const { stores, close } = await nodesOn(engine, 3);
    cleanups.push(close);
    const apps = stores.map((store, i) => buildJobsApp(store, { node: `n${i}`, jobs: { limits: { pollingIntervalSeconds: 0.5 } } }));
    for (const app of apps) {
      cleanups.push(() => app.tether.close());
      await app.tether.start();
    }
    const ids: string[] = [];
    for (let i = 0; i < 30; i += 1) {
      const { jobId } = await apps[i % 3]!.caller(ALICE).tasks.addWithJob({ projectId: "p1", title: `t${i}` });
      ids.push(jobId);
    }
    const sql = stores[0]!.sql;
    await waitFor(
      "all 30 completed",
      async () => (await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "_tether_jobs" WHERE status = 'completed'`))[0]!.n === 30,
      { timeoutMs: 60_000 },
    );
    const runs = await jobRuns(sql);
    expect(runs.map((r) => r.job_id).sort()).toEqual([...ids].sort());
    const perNode: Record<string, number> = {};
    for (const run of runs) perNode[run.node] = (perNode[run.node] ?? 0) + 1;
    console.log(`jobs on ${engine}, 3 nodes, runs per node:`, perNode);
  }, 90_000);

  it("a cron schedule on two nodes fires once per tick", async () => {
    const { stores, close } = await nodesOn(engine, 2);
    cleanups.push(close);
    // Both nodes on one hand-driven clock: pg-boss's timers (cron passes, polls) fire only on
    // tick(), and its SQL reads the same time, so four minutes pass in a few seconds.
    const clock = new TestClock(Date.UTC(2031, 0, 1, 0, 0, 5));
    const apps = stores.map((store, i) =>
      buildJobsApp(store, { node: `n${i}`, cron: true, jobs: { clock, limits: { cronMonitorIntervalSeconds: 10, cronWorkerIntervalSeconds: 2 } } }),
    );
    for (const app of apps) {
      cleanups.push(() => app.tether.close());
      await app.tether.start();
    }
    const sql = stores[0]!.sql;
    const ticks = async () => (await jobRuns(sql)).filter((r) => r.name === "tick");
    const schedule = await apps[1]!.caller(userContext("root", "admin")).$jobs.schedules();
    expect(schedule).toEqual([{ name: "tick", cron: "* * * * *", timezone: "UTC", input: { tag: "every minute" }, nextRunAt: expect.any(String) }]);
    expect(new Date(schedule[0]!.nextRunAt!).getTime()).toBe(Date.UTC(2031, 0, 1, 0, 1, 0));
    // pg-boss counts an occurrence due for a minute after it: the current minute's (00:00) runs at
    // start. Then each minute passed adds exactly one run.
    for (let minute = 0; minute <= 3; minute += 1) {
      // A minute in 2-second steps (the first round: 10 s), each pass and poll of both nodes in turn.
      for (let s = 0; s < (minute === 0 ? 5 : 30); s += 1) await clock.tick(2000);
      // The run of this minute arrives; it is also the barrier that proves no second one for the
      // previous minute came (a later minute's run is sent after the earlier minute's).
      await waitFor(`the run of minute ${minute}`, async () => (await ticks()).length >= minute + 1, { timeoutMs: 20_000 });
      expect(await ticks()).toHaveLength(minute + 1);
    }
    const runs = await ticks();
    expect(new Set(runs.map((r) => r.job_id)).size).toBe(4);
    // "Run now" adds one outside the schedule.
    const now = await apps[0]!.caller(userContext("root", "admin")).$jobs.runNow({ name: "tick" });
    await clock.tick(2000);
    await waitFor("the manual run", async () => (await ticks()).some((r) => r.job_id === now), { timeoutMs: 20_000 });
    expect(await ticks()).toHaveLength(5);
  }, 120_000);

  it("a SIGKILLed worker's job runs again after its heartbeat lapses; a finished job never again", async () => {
    let database: TestDatabase | null = null;
    let dataDir: string | null = null;
    if (engine === "postgres") {
      database = await createTestDatabase("postgres");
      cleanups.push(() => database!.drop());
    } else {
      dataDir = mkdtempSync(join(tmpdir(), "tether-jobs-"));
      cleanups.push(async () => rmSync(dataDir!, { recursive: true, force: true }));
    }
    const target = { url: database?.url, dataDir: dataDir ?? undefined };
    const a = startJobNode({ ...target, node: "A", enqueue: true });
    cleanups.push(() => a.stop());
    const echo = (await a.line(/^ENQUEUED echo (\S+)/))[1]!;
    await a.line(new RegExp(`^COMPLETED ${echo}`));
    const wait = (await a.line(/^ENQUEUED wait (\S+)/))[1]!;
    await a.line(new RegExp(`^RUN wait ${wait} 1`));
    await a.kill();
    const killedAt = Date.now();

    const b = startJobNode({ ...target, node: "B", barrier: true });
    cleanups.push(() => b.stop());
    await b.line(new RegExp(`^RUN wait ${wait} 2`));
    const rerunAfterMs = Date.now() - killedAt;
    await b.line(/^BARRIER /);
    // B saw no run of the finished echo before its barrier (the barrier ran after the re-run).
    expect(b.lines().filter((l) => l.includes(echo))).toEqual([]);
    await b.stop();
    console.log(`jobs on ${engine}: the killed worker's job re-ran ${rerunAfterMs} ms after SIGKILL (heartbeatSeconds 10)`);

    const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), ...target });
    try {
      expect((await jobRuns(store.sql, echo)).map((r) => [r.node, r.attempt])).toEqual([["A", 1]]);
      expect((await jobRuns(store.sql, wait)).map((r) => [r.node, r.attempt])).toEqual([["A", 1], ["B", 2]]);
    } finally {
      await store.close();
    }
  }, 300_000);
});

interface JobNodeProcess {
  /** Resolves with the first line (seen or to come) matching `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  lines(): string[];
  kill(): Promise<void>;
  stop(): Promise<void>;
}

function startJobNode(config: { url?: string; dataDir?: string; node: string; enqueue?: boolean; barrier?: boolean }): JobNodeProcess {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "test/support/jobNode.ts"], {
    env: { ...process.env, JOB_NODE: JSON.stringify(config), TETHER_LOG_LEVEL: "silent" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const seen: string[] = [];
  let buffer = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    seen.push(...parts);
  });
  return {
    // Generous: a child process that opens PGlite, migrates and starts pg-boss can take tens of
    // seconds on a loaded 2-core machine; this bounds failure detection, not speed.
    async line(pattern, timeoutMs = 90_000) {
      let match: RegExpMatchArray | null = null;
      await waitFor(`node ${config.node}: ${pattern}`, () => seen.some((l) => (match = l.match(pattern)) !== null), {
        timeoutMs,
        fatal: () => (child.exitCode !== null ? `node ${config.node} exited (${child.exitCode}): ${seen.join(" | ")}` : null),
      });
      return match!;
    },
    lines: () => [...seen],
    kill: () => killChild(child),
    stop: () => stopChild(child),
  };
}
