export { JobBuilder } from "./builder.ts";
export { DEFAULT_JOB_LIMITS } from "./config.ts";
export type { EnqueueOptions, JobDefinitionOptions, JobLimits, JobRuntimeOptions } from "./config.ts";
export { FINISHED_STATUSES, JOBS_TABLE, withJobsModel } from "./jobState.ts";
export type { JobState, JobStatus } from "./jobState.ts";
export { ProgressCoalescer } from "./progress.ts";
export type { ProgressValue, ReportProgress } from "./progress.ts";
export { bossDb, DEAD_LETTER_QUEUE, JobRuntime } from "./runtime.ts";
export type { CronEntry, DeadLetter, JobFinishedListener, JobOutcome, QueueDepth, ScheduleInfo, TransactionSql } from "./runtime.ts";
export type {
  JobAt,
  JobClient,
  JobContext,
  JobDefinition,
  JobHandler,
  JobHandlerArgs,
  JobInput,
  JobName,
  JobOutput,
  JobOwner,
  JobProcedure,
  UntypedJobClient,
} from "./types.ts";
export { ownerOf, viewerOf } from "./viewer.ts";
