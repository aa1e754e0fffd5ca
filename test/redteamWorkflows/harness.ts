/**
 * Shared test plumbing: an app per engine on a fresh database, waiting for a run's state through
 * the runtime (as the system) or through a user's client.
 */
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";
import type { Engine } from "@tether/server";
import { waitFor } from "../support/waitFor.ts";
import { buildApp, Probe, type AppOptions, type RedApp } from "./app.ts";
import { signUp, type RedUser } from "./users.ts";

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

/** The run's state as an admin sees it, or null while it does not exist yet. */
const readRun = (app: RedApp, id: string): Promise<RunState | null> => app.tether.workflowRuntime.read(id, SYSTEM).catch(() => null);

/** Waits until the run's state (as an admin viewer) satisfies `done`, and returns it. */
export async function waitRun(app: RedApp, id: string, done: (state: RunState) => boolean, what = "condition"): Promise<RunState> {
  let last: RunState | null = null;
  await waitFor(`${what} (run ${id})`, async () => (last = await readRun(app, id)) !== null && done(last), { timeoutMs: 150_000 }).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; last ${JSON.stringify(last)}`);
  });
  return last!;
}

export const finished = (s: RunState) => s.status === "completed" || s.status === "failed" || s.status === "cancelled";

export function until(check: () => boolean | Promise<boolean>, what = "condition"): Promise<void> {
  return waitFor(what, check, { timeoutMs: 150_000 });
}

/**
 * For "never gets there" claims, after a barrier run has finished: the run's state once `done`
 * holds, or its last state when `boundMs` ran out (a safety bound; the assertion after it is what
 * fails, with the state in its message).
 */
export async function settle(app: RedApp, id: string, done: (state: RunState) => boolean, boundMs = 30_000): Promise<RunState> {
  let last = await app.tether.workflowRuntime.read(id, SYSTEM);
  await waitFor(`run ${id} to settle`, async () => done((last = await app.tether.workflowRuntime.read(id, SYSTEM))), { timeoutMs: boundMs }).catch(() => undefined);
  return last;
}

/** An app on a fresh database of `engine` with these users signed up; close() ends all of it. */
export async function appWithUsers(engine: Engine, names: readonly string[], options: Partial<AppOptions> = {}) {
  const env = await appOn(engine, options);
  const users: RedUser[] = [];
  for (const name of names) users.push(await signUp(env.app.url, name));
  return {
    app: env.app,
    users,
    async close() {
      for (const user of users) user.client.close();
      await env.close();
    },
  };
}
export type AppWithUsers = Awaited<ReturnType<typeof appWithUsers>>;

export const waitingAt = (name: string) => (s: RunState) => s.steps.some((step) => step.name === name && step.status === "waiting");
