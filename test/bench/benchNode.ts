/**
 * One worker node of the jobs bench as its own process (JOBS_BENCH_NODE: { url, live, limits? }):
 * opens the Postgres database the parent migrated, starts the job runtime (and, with `live`, the
 * reactor and change feed, as a real node does), prints READY, and works until SIGTERM.
 */
import { createStore, type JobLimits } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildBenchApp } from "./jobsApp.ts";

const config = JSON.parse(process.env.JOBS_BENCH_NODE ?? "{}") as { url: string; live: boolean; limits?: Partial<JobLimits> };
const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: config.url });
const app = buildBenchApp(store, { work: true, limits: config.limits });
if (config.live) await app.tether.start();
else await app.tether.jobRuntime.start();
process.stdout.write("READY\n");

process.once("SIGTERM", () => {
  void (async () => {
    await app.tether.close();
    await store.close();
    process.exit(0);
  })();
});
