/**
 * One workflow node as its own process (so SIGKILL is real): store + the workflows fixture app on
 * the database the parent names (WORKFLOW_NODE: { url?, dataDir?, node, start?, watch? }).
 * Prints `READY`; with `start`, starts three runs as Alice and holds them: `inside` inside step b
 * (`HELD inside`), `between` between steps a and b (`HELD between`), `sleepy` in an 8 s durable
 * sleep (`PARKED sleepy`; `sleepMs`, default 8 s). With `releaseFile`, `sleepy`'s first step waits
 * (`HELD sleepy`) until that file exists, so its sleep starts when the parent says, not at once.
 * With `watch`, prints `DONE <id> <status>` as each named run finishes.
 * SIGTERM stops it gracefully.
 */
import { existsSync } from "node:fs";
import { createStore, migrate } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildWorkflowsApp, WF_RUNS_SQL } from "../fixtures/workflowsApp.ts";
import { userContext } from "../fixtures/securedApp.ts";
import { waitFor } from "./waitFor.ts";

const config = JSON.parse(process.env.WORKFLOW_NODE ?? "{}") as { url?: string; dataDir?: string; node: string; start?: boolean; sleepMs?: number; releaseFile?: string; watch?: string[] };
const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: config.url, dataDir: config.dataDir });
await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
await store.sql.exec(WF_RUNS_SQL);
const say = (line: string) => process.stdout.write(`${line}\n`);
const hold = () => new Promise<void>(() => undefined);
const app = buildWorkflowsApp(store, {
  node: config.node,
  // A dead node's resume is retried `heartbeatSeconds` (pg-boss's floor: 10) after its last
  // heartbeat, found by a supervisor pass every second.
  jobs: { limits: { heartbeatSeconds: 10, heartbeatRefreshSeconds: 1, superviseIntervalSeconds: 1, pollingIntervalSeconds: 0.5 } },
  onStep: (workflowId, step) => {
    if (config.start && workflowId === "inside" && step === "b") {
      say("HELD inside");
      return hold();
    }
    if (config.start && config.releaseFile && workflowId === "sleepy" && step === "before") {
      say("HELD sleepy");
      const releaseFile = config.releaseFile;
      return waitFor("sleepy released", () => existsSync(releaseFile), { timeoutMs: 600_000 });
    }
  },
  onBetween: (workflowId) => {
    if (config.start && workflowId === "between") {
      say("HELD between");
      return hold();
    }
  },
});
await app.tether.start();
say("READY");
const alice = app.caller(userContext("alice"));

if (config.start) {
  await alice.start.three({ tag: "inside", id: "inside" });
  await alice.start.three({ tag: "between", id: "between" });
  await alice.start.any({ name: "sleeper", input: { ms: config.sleepMs ?? 8000 }, id: "sleepy" });
  await waitFor("sleepy parked", async () => (await alice.$workflows.get({ id: "sleepy" })).status === "waiting", { timeoutMs: 240_000 });
  say("PARKED sleepy");
}

for (const id of config.watch ?? []) {
  void waitFor(`${id} finished`, async () => ["completed", "failed", "cancelled"].includes((await alice.$workflows.get({ id })).status), { timeoutMs: 240_000 }).then(
    async () => say(`DONE ${id} ${(await alice.$workflows.get({ id })).status}`),
  );
}

process.once("SIGTERM", () => {
  void (async () => {
    await app.tether.close();
    await store.close();
    process.exit(0);
  })();
});
