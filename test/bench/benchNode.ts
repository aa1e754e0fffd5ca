/**
 * One worker node of a bench as its own process (TETHER_BENCH_NODE: a BenchNodeConfig, see
 * nodeProcess.ts): opens the Postgres database the parent migrated, builds the jobs or workflows
 * bench app, starts its job runtime (and, with `live`, the reactor and change feed, as a real
 * node does), prints READY, and works until SIGTERM.
 */
import { createStore } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildBenchApp } from "./jobsApp.ts";
import { BENCH_NODE_ENV, type BenchNodeConfig } from "./nodeProcess.ts";
import { buildWorkflowBenchApp } from "./workflowsApp.ts";

const config = JSON.parse(process.env[BENCH_NODE_ENV] ?? "{}") as BenchNodeConfig;
const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: config.url });
const { tether } = config.app === "workflows" ? buildWorkflowBenchApp(store, { work: true }) : buildBenchApp(store, { work: true, limits: config.limits });
if (config.live) await tether.start();
else await tether.jobRuntime.start();
process.stdout.write("READY\n");

process.once("SIGTERM", () => {
  void (async () => {
    await tether.close();
    await store.close();
    process.exit(0);
  })();
});
