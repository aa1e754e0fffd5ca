/**
 * One workflow node as a child process, for SIGKILL tests: builds the red team's app on the engine
 * and database from the environment, starts the runs in REDWF_START (JSON, as the system, each
 * once: start is idempotent by id), reports step effects to REDWF_LOG, prints "ready".
 */
import { buildApp } from "./app.ts";

const engine = process.env.REDWF_ENGINE === "postgres" ? "postgres" : "pglite";
const app = await buildApp({
  engine,
  url: process.env.REDWF_URL || undefined,
  dataDir: process.env.REDWF_DATADIR || undefined,
  serve: false,
  migrate: process.env.REDWF_MIGRATE !== "0",
});
// The blocker's step blocks until released; with REDWF_RELEASE=1 (a restarted node) it does not.
const starts = JSON.parse(process.env.REDWF_START ?? "[]") as { name: string; input: unknown; id: string }[];
for (const s of starts) await app.tether.workflowRuntime.client(null).start(s.name, s.input, { id: s.id });
process.stdout.write("ready\n");
const sends = JSON.parse(process.env.REDWF_SEND ?? "[]") as { id: string; name: string; payload: unknown }[];
for (const e of sends) await app.tether.workflowRuntime.client(null).sendEvent(e.id, e.name, e.payload);
// Report each watched run once it is finished.
const watch = new Set(JSON.parse(process.env.REDWF_WATCH ?? "[]") as string[]);
const timer = setInterval(async () => {
  for (const id of watch) {
    try {
      const state = await app.tether.workflowRuntime.read(id, { id: "system", admin: true });
      if (state.status === "completed" || state.status === "failed" || state.status === "cancelled") {
        watch.delete(id);
        process.stdout.write(`done ${JSON.stringify(state)}\n`);
      }
    } catch {
      // not there yet
    }
  }
}, 200);
timer.unref();
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
