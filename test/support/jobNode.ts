/**
 * One job node as its own process (so SIGKILL is real): store + the jobs fixture app on the
 * database the parent names (JOB_NODE: { url?, dataDir?, node, enqueue? }). Prints `READY`, then
 * one line per event: `RUN <name> <jobId> <attempt>` when a handler starts, `ENQUEUED <name>
 * <jobId>` and `COMPLETED <jobId>` for what it enqueues itself; with `barrier`, once a `wait` job
 * runs here, an `echo` enqueued and completed after it (`BARRIER <jobId>`). SIGTERM stops it
 * gracefully.
 */
import { createStore, migrate } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildJobsApp, JOB_RUNS_SQL } from "../fixtures/jobsApp.ts";
import { userContext } from "../fixtures/securedApp.ts";
import { waitFor } from "./waitFor.ts";

const config = JSON.parse(process.env.JOB_NODE ?? "{}") as { url?: string; dataDir?: string; node: string; enqueue?: boolean; barrier?: boolean };
const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: config.url, dataDir: config.dataDir });
await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
await store.sql.exec(JOB_RUNS_SQL);
const say = (line: string) => process.stdout.write(`${line}\n`);
const app = buildJobsApp(store, {
  node: config.node,
  // Short timings: a dead worker's job is retried `heartbeatSeconds` (pg-boss's floor: 10) after
  // its last heartbeat, found by a supervisor pass every second, with no retry delay. A graceful
  // stop aborts the `wait` job still running after 1 s (it runs until aborted: the default 10 s
  // grace would only be waited out).
  jobs: {
    limits: { heartbeatSeconds: 10, heartbeatRefreshSeconds: 1, superviseIntervalSeconds: 1, retryDelaySeconds: 0, pollingIntervalSeconds: 0.5, shutdownTimeoutMs: 1_000 },
  },
  onRun: (run) => {
    say(`RUN ${run.name} ${run.jobId} ${run.attempt}`);
    if (config.barrier && run.name === "wait") void barrier();
  },
});

async function barrier(): Promise<void> {
  const alice = app.caller(userContext("alice"));
  const id = await alice.start.any({ name: "echo", input: { text: "barrier" } });
  await waitFor("barrier completed", async () => (await alice.$jobs.get({ id })).status === "completed", { timeoutMs: 30_000 });
  say(`BARRIER ${id}`);
}
await app.tether.start();
say("READY");

if (config.enqueue) {
  const alice = app.caller(userContext("alice"));
  const echo = await alice.start.any({ name: "echo", input: { text: "finished before the kill" } });
  say(`ENQUEUED echo ${echo}`);
  await waitFor("echo completed", async () => (await alice.$jobs.get({ id: echo })).status === "completed", { timeoutMs: 30_000 });
  say(`COMPLETED ${echo}`);
  const wait = await alice.start.wait();
  say(`ENQUEUED wait ${wait}`);
}

process.once("SIGTERM", () => {
  void (async () => {
    await app.tether.close();
    await store.close();
    process.exit(0);
  })();
});
