/**
 * Shared test plumbing: an app per engine on a fresh database, waiting for a run's state through
 * the runtime (as the system) or through a user's client.
 */
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";
import type { Engine } from "@tether/server";
import { buildApp, Probe, type AppOptions, type RedApp } from "./app.ts";

export async function appOn(engine: Engine, options: Partial<AppOptions> = {}): Promise<{ app: RedApp; database: TestDatabase; close(): Promise<void> }> {
  const database = await createTestDatabase(engine);
  const app = await buildApp({ engine, url: database.url, dataDir: database.dataDir, probe: options.probe ?? new Probe(), ...options });
  return {
    app,
    database,
    async close() {
      await app.close();
      await database.drop();
    },
  };
}

export type RunState = Awaited<ReturnType<RedApp["tether"]["workflowRuntime"]["read"]>>;
export const SYSTEM = { id: "system", admin: true } as const;

/** Polls the run's state (as an admin viewer) until `done` holds; the test timeout bounds it. */
export async function waitRun(app: RedApp, id: string, done: (state: RunState) => boolean, what = "condition"): Promise<RunState> {
  let last: RunState | undefined;
  const deadline = Date.now() + 150_000; // a safety bound only: the loop must not outlive its test
  for (;;) {
    try {
      last = await app.tether.workflowRuntime.read(id, SYSTEM);
      if (done(last)) return last;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 50));
    if (Date.now() > deadline) throw new Error(`never: ${what}; last ${JSON.stringify(last)}`);
  }
}

export const finished = (s: RunState) => s.status === "completed" || s.status === "failed" || s.status === "cancelled";

export async function until(check: () => boolean | Promise<boolean>, what = "condition"): Promise<void> {
  for (let i = 0; ; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
    if (i > 3000) throw new Error(`never: ${what}`);
  }
}

/**
 * For "never gets there" claims: the run's state once `done` holds, or its last state after
 * `boundMs` (a safety bound for a condition that a working runtime reaches in well under a second
 * once the barrier before it has passed; the assertion after it is what fails).
 */
export async function settle(app: RedApp, id: string, done: (state: RunState) => boolean, boundMs = 30_000): Promise<RunState> {
  const deadline = Date.now() + boundMs;
  let last = await app.tether.workflowRuntime.read(id, SYSTEM);
  while (!done(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    last = await app.tether.workflowRuntime.read(id, SYSTEM);
  }
  return last;
}

export const waitingAt = (name: string) => (s: RunState) => s.steps.some((step) => step.name === name && step.status === "waiting");
