/**
 * The demo's background jobs (issue 13): `exportCsv` (a project's tasks as a CSV file, with live
 * progress). The welcome message is a step of the `welcome` workflow (../workflows/).
 */
import type { JobBuilder } from "@tether/server";
import type { PrismaClient } from "../../../../../generated/prisma/client.ts";
import { demoJobLimits, type DemoJobLimits } from "./config.ts";
import { exportCsvJob } from "./exportCsv.ts";

export { DEFAULT_DEMO_JOBS, demoJobLimits, type DemoJobLimits } from "./config.ts";
export { csvField, csvRecord, parseCsv } from "./csv.ts";
export { EXPORT_COLUMNS, exportUrl } from "./exportCsv.ts";

/** The job procedures, for `tether.jobs(demoJobs(tether.job, limits))`. */
export function demoJobs(job: JobBuilder<PrismaClient, undefined, undefined>, limits: DemoJobLimits = demoJobLimits()) {
  return { exportCsv: exportCsvJob(job, limits) };
}
