/**
 * Bench nodes as separate processes (multi-node arms, Postgres only: PGlite is one process's
 * database). The parent migrates the database and starts `test/bench/benchNode.ts` children with
 * a BenchNodeConfig; each opens the same database, builds its bench app, prints READY and works
 * until SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { JobLimits } from "@tether/server";
import { waitFor } from "../support/waitFor.ts";

export interface BenchNodeConfig {
  /** The Postgres database the parent migrated. */
  url: string;
  /** Which bench app the node runs: the jobs bench's (jobsApp.ts) or the workflows bench's (workflowsApp.ts). */
  app: "jobs" | "workflows";
  /** Also run the live engine (reactor + change feed), as a real node does. */
  live: boolean;
  /** The jobs app's job limits. */
  limits?: Partial<JobLimits>;
}

export const BENCH_NODE_ENV = "TETHER_BENCH_NODE";

export async function startBenchNode(config: BenchNodeConfig): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/bench/benchNode.ts"], {
    env: { ...process.env, [BENCH_NODE_ENV]: JSON.stringify(config), TETHER_LOG_LEVEL: "silent" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  await waitFor("bench node READY", () => out.includes("READY"), {
    timeoutMs: 120_000,
    fatal: () => (child.exitCode !== null ? `bench node exited (${child.exitCode})` : null),
  });
  return child;
}

/** SIGTERM (the node closes its app and store), SIGKILL after 20 s. */
export async function stopBenchNode(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await exited;
  clearTimeout(timer);
}
