/**
 * Red team, workflows: real SIGKILLs of a node process (PGlite: the same data directory reopened by
 * the next process; Postgres: the same database). Killed inside a step, between steps, during a
 * sleep, while waiting for an event: the next node finishes every run, completed steps never run
 * again, the interrupted step runs again with attempt 2, a sleep wakes on its original deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase, engines, type TestDatabase } from "../support/databases.ts";
import { until } from "./harness.ts";
import type { RunState } from "./harness.ts";

interface Child { proc: ChildProcess; lines: string[] }

function spawnNode(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", "test/redteamWorkflows/node.ts"], {
    env: { ...process.env, ...env, TETHER_LOG_LEVEL: "silent" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const child: Child = { proc, lines: [] };
  let buffer = "";
  proc.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    child.lines.push(...parts);
  });
  return child;
}
const exited = (c: Child) => c.proc.exitCode !== null || c.proc.signalCode !== null;
async function kill(c: Child): Promise<void> {
  if (exited(c)) return;
  const gone = new Promise((r) => c.proc.once("exit", r));
  c.proc.kill("SIGKILL");
  await gone;
}
async function stop(c: Child): Promise<void> {
  if (exited(c)) return;
  const gone = new Promise((r) => c.proc.once("exit", r));
  c.proc.kill("SIGTERM");
  const force = setTimeout(() => c.proc.kill("SIGKILL"), 20_000);
  await gone;
  clearTimeout(force);
}

interface Hit { runId: string; step: string; n: number; pid: number; at: number }
const hits = (file: string): Hit[] => (existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Hit) : []);
const count = (file: string, runId: string, step: string | RegExp) => hits(file).filter((h) => h.runId === runId && (typeof step === "string" ? h.step === step : step.test(h.step))).length;
const doneStates = (c: Child) => c.lines.filter((l) => l.startsWith("done ")).map((l) => JSON.parse(l.slice(5)) as RunState);

describe.each(engines)("workflow crashes (%s)", (engine) => {
  const children: Child[] = [];
  let database: TestDatabase | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), "redwf-"));
  afterAll(async () => {
    for (const c of children) await kill(c);
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("SIGKILL inside a step, between steps, during a sleep and a wait: the next node finishes each run exactly as promised", async () => {
    database = await createTestDatabase(engine);
    const log = path.join(dir, "steps.jsonl");
    const base = {
      REDWF_ENGINE: engine,
      REDWF_URL: database.url ?? "",
      REDWF_DATADIR: engine === "pglite" ? path.join(dir, "pgdata") : "",
      REDWF_LOG: log,
    };
    const node = (env: Record<string, string>) => {
      const c = spawnNode({ ...base, ...env });
      children.push(c);
      return c;
    };
    const SLEEP_MS = 12_000;

    // Node 1: a blocking step, a sleep and a wait in flight; SIGKILL while all three are.
    const n1 = node({
      REDWF_START: JSON.stringify([
        { name: "blocker", input: {}, id: "k-block" },
        { name: "sleeper", input: { ms: SLEEP_MS }, id: "k-sleep" },
        { name: "gate", input: {}, id: "k-gate" },
      ]),
    });
    await until(() => count(log, "k-block", "block") === 1 && count(log, "k-sleep", "start") === 1 && count(log, "k-gate", "before") === 1, "node 1 reached every step");
    await kill(n1);

    // Node 2 dies by itself between two steps of one run.
    const n2 = node({ REDWF_DIE: "between", REDWF_MIGRATE: "0", REDWF_START: JSON.stringify([{ name: "crashy", input: {}, id: "k-between" }]) });
    await until(() => exited(n2), "node 2 died between steps");
    // Node 3 dies by itself inside a step of another run.
    const n3 = node({ REDWF_DIE: "inside", REDWF_MIGRATE: "0", REDWF_START: JSON.stringify([{ name: "crashy", input: {}, id: "k-inside" }]) });
    await until(() => exited(n3), "node 3 died inside a step");

    // Node 4: clean; the event for the wait is sent once it is up.
    const ids = ["k-block", "k-sleep", "k-gate", "k-between", "k-inside"];
    const n4 = node({
      REDWF_RELEASE: "1",
      REDWF_MIGRATE: "0",
      REDWF_SEND: JSON.stringify([{ id: "k-gate", name: "go", payload: { n: 42 } }]),
      REDWF_WATCH: JSON.stringify(ids),
    });
    await until(() => doneStates(n4).length === ids.length || exited(n4), "node 4 finishes every run").catch((error: unknown) => {
      throw new Error(`${String(error)}; finished: ${doneStates(n4).map((s) => s.id).join(", ")}; step hits: ${JSON.stringify(hits(log).map((h) => `${h.runId}:${h.step}`))}`);
    });
    const states = new Map(doneStates(n4).map((s) => [s.id, s]));
    await stop(n4);
    expect([...states.keys()].sort()).toEqual([...ids].sort());
    for (const s of states.values()) expect(s.status, `${s.id}: ${s.error}`).toBe("completed");

    // Blocked step: ran again (attempt 2), the step after it once.
    // (Node 2 or 3 may have taken it over too before dying: at least twice, each attempt counted.)
    expect(count(log, "k-block", "block")).toBeGreaterThanOrEqual(2);
    expect(count(log, "k-block", "after")).toBe(1);
    expect(states.get("k-block")!.steps.find((s) => s.name === "block")!.attempts).toBe(count(log, "k-block", "block"));

    // Node 1 was killed once each step's function had run, not necessarily after its completion
    // committed: such a step runs again (at-least-once, a new attempt); a completed one never does,
    // so the attempts the run recorded equal the runs the log saw.
    const attemptsOf = (id: string, step: string) => states.get(id)!.steps.find((s) => s.name === step)!.attempts;
    // Sleep: the step before it not redone once completed; woke on the original deadline, not a fresh one.
    expect(count(log, "k-sleep", "start")).toBe(attemptsOf("k-sleep", "start"));
    const { started, woke } = states.get("k-sleep")!.output as { started: number; woke: number };
    expect(woke - started).toBeGreaterThanOrEqual(SLEEP_MS - 50);

    // Wait: the event reached it; the step before the wait not redone once completed.
    expect(states.get("k-gate")!.output).toEqual({ payload: { n: 42 } });
    expect(count(log, "k-gate", "before")).toBe(attemptsOf("k-gate", "before"));
    expect(count(log, "k-gate", "after")).toBe(1);

    // Between steps: a never again; b and c once each.
    expect(count(log, "k-between", "a")).toBe(1);
    expect(count(log, "k-between", /^b#/)).toBe(1);
    expect(count(log, "k-between", "c")).toBe(1);

    // Inside a step: a never again; b twice (attempts 1 and 2); c once.
    expect(count(log, "k-inside", "a")).toBe(1);
    expect(hits(log).filter((h) => h.runId === "k-inside" && h.step.startsWith("b#")).map((h) => h.step)).toEqual(["b#1", "b#2"]);
    expect(count(log, "k-inside", "c")).toBe(1);
  }, 400_000);

  it.runIf(engine === "postgres")("SIGKILL of one of two live nodes mid-step: the other takes the run over by itself", async () => {
    const db = await createTestDatabase("postgres");
    const log = path.join(dir, "takeover.jsonl");
    const base = { REDWF_ENGINE: "postgres", REDWF_URL: db.url ?? "", REDWF_LOG: log };
    try {
      const n1 = spawnNode({ ...base, REDWF_START: JSON.stringify([{ name: "blocker", input: {}, id: "k-takeover" }]) });
      children.push(n1);
      await until(() => count(log, "k-takeover", "block") === 1, "node 1 runs the step");
      const n2 = spawnNode({ ...base, REDWF_RELEASE: "1", REDWF_MIGRATE: "0", REDWF_WATCH: JSON.stringify(["k-takeover"]) });
      children.push(n2);
      await until(() => n2.lines.includes("ready"), "node 2 up");
      await kill(n1);
      await until(() => doneStates(n2).length === 1 || exited(n2), "node 2 finishes the run");
      const state = doneStates(n2)[0]!;
      await stop(n2);
      expect(state.status).toBe("completed");
      expect(count(log, "k-takeover", "block")).toBe(2);
      expect(count(log, "k-takeover", "after")).toBe(1);
      expect(hits(log).filter((h) => h.runId === "k-takeover" && h.step === "after").every((h) => h.pid === n2.proc.pid)).toBe(true);
    } finally {
      await db.drop();
    }
  }, 300_000);
});
