import type { AnyTRPCMutationProcedure, inferProcedureInput, inferProcedureOutput, TRPCMutationProcedure } from "@trpc/server";
import type { z } from "zod";
import type { Logger } from "../log/index.ts";
import type { EnqueueOptions, JobDefinitionOptions } from "./config.ts";
import type { ReportProgress } from "./progress.ts";

/** Who enqueued a job: handlers see it as `ctx.user`, and only they (or an admin) may read or cancel it. */
export interface JobOwner {
  id: string;
}

/** What a handler's `ctx` holds: the system's database access plus the enqueuing user's identity. */
export interface JobContext<Client> {
  /** The app's Prisma client, not policy-scoped: a job runs as the system. */
  db: Client;
  /** The user whose mutation enqueued the job (null for cron ticks and system enqueues). */
  user: JobOwner | null;
  job: { id: string; name: string; attempt: number; maxAttempts: number };
  /** Enqueue follow-up jobs (each at once, in its own transaction; owned by the same user). */
  jobs: UntypedJobClient;
  log: Logger;
}

export interface JobHandlerArgs<Client, Input> {
  ctx: JobContext<Client>;
  input: Input;
  /** Reports progress (0–100, optional message); coalesced, see DEFAULT_JOB_LIMITS.progressIntervalMs. */
  progress: ReportProgress;
  /** Aborted when the job is cancelled, times out, loses its claim, or the node shuts down. */
  signal: AbortSignal;
}

export type JobHandler<Client, Input, Output> = (args: JobHandlerArgs<Client, Input>) => Promise<Output> | Output;

/** A job's definition as the runtime keeps it (the procedure in the router carries its types). */
export interface JobDefinition {
  readonly schema: z.ZodType | null;
  readonly options: JobDefinitionOptions;
  readonly handler: JobHandler<unknown, unknown, unknown>;
}

/**
 * A job in a router: a tRPC mutation procedure typed with the job's input and output (so
 * `inferRouterInputs/Outputs` see them). Clients cannot call it (NOT_FOUND): jobs are enqueued
 * by mutations, `ctx.jobs.enqueue(name, input)`.
 */
export type JobProcedure<Input, Output> = TRPCMutationProcedure<{ input: Input; output: Output; meta: unknown }>;

/** A router record or built router of jobs. */
type RecordOf<T> = T extends { _def: { record: infer R } } ? R : T;

/** Dotted names of the jobs in a jobs router: `"exportCsv" | "mail.welcome"`. */
export type JobName<T> = {
  [K in keyof RecordOf<T> & string]: RecordOf<T>[K] extends AnyTRPCMutationProcedure ? K : `${K}.${JobName<RecordOf<T>[K]>}`;
}[keyof RecordOf<T> & string];

/** The job procedure at a dotted name. */
export type JobAt<T, N extends string> = N extends `${infer Head}.${infer Rest}`
  ? Head extends keyof RecordOf<T>
    ? JobAt<RecordOf<T>[Head], Rest>
    : never
  : N extends keyof RecordOf<T>
    ? RecordOf<T>[N]
    : never;

/** A job's input type (what enqueue takes) by router and name. */
export type JobInput<T, N extends JobName<T>> = JobAt<T, N> extends AnyTRPCMutationProcedure ? inferProcedureInput<JobAt<T, N>> : never;
/** A job's output type (its handler's return value) by router and name: `useJob<JobOutput<...>>(id)`. */
export type JobOutput<T, N extends JobName<T>> = JobAt<T, N> extends AnyTRPCMutationProcedure ? inferProcedureOutput<JobAt<T, N>> : never;

/** `ctx.jobs` typed by a jobs router (`tether.withJobs(jobs).mutation`): wrong names or inputs do not compile. */
export interface JobClient<Jobs> {
  /**
   * Enqueues a job and returns its id. In a mutation it joins the mutation's transaction (a
   * rollback enqueues nothing); elsewhere it commits at once. Input is validated by the job's
   * schema (BAD_REQUEST).
   */
  enqueue<N extends JobName<Jobs>>(name: N, ...args: undefined extends JobInput<Jobs, N> ? [input?: JobInput<Jobs, N>, options?: EnqueueOptions] : [input: JobInput<Jobs, N>, options?: EnqueueOptions]): Promise<string>;
}

/** `ctx.jobs` before it is typed by a router. */
export interface UntypedJobClient {
  enqueue(name: string, input?: unknown, options?: EnqueueOptions): Promise<string>;
}
