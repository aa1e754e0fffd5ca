import type { z } from "zod";
import type { JobDefinitionOptions } from "./config.ts";
import type { JobDefinition, JobHandler, JobProcedure } from "./types.ts";

interface BuilderState {
  schema: z.ZodType | null;
  options: JobDefinitionOptions;
}

/**
 * `tether.job.input(schema).options({...}).handler(fn)`: builds a job as a procedure for a jobs
 * router. Each step returns a new builder (like tRPC's), so a partial builder can be shared.
 */
export class JobBuilder<Client, InputIn, InputOut> {
  constructor(
    private readonly state: BuilderState,
    private readonly build: (definition: JobDefinition) => unknown,
  ) {}

  /** The job's input schema: enqueue validates against it (BAD_REQUEST), the handler gets its output. */
  input<S extends z.ZodType>(schema: S): JobBuilder<Client, z.input<S>, z.output<S>> {
    return new JobBuilder<Client, z.input<S>, z.output<S>>({ ...this.state, schema }, this.build);
  }

  /** Retries, backoff, timeout, heartbeat, concurrency and priority of this job (over DEFAULT_JOB_LIMITS). */
  options(options: JobDefinitionOptions): JobBuilder<Client, InputIn, InputOut> {
    return new JobBuilder<Client, InputIn, InputOut>({ ...this.state, options: { ...this.state.options, ...options } }, this.build);
  }

  /** The work. Runs at least once per enqueue (see docs/jobs.md); its return value is the job's `output`. */
  handler<Output>(fn: JobHandler<Client, InputOut, Output>): JobProcedure<InputIn, Awaited<Output>> {
    return this.build({
      schema: this.state.schema,
      options: this.state.options,
      handler: fn as JobHandler<unknown, unknown, unknown>,
    }) as JobProcedure<InputIn, Awaited<Output>>;
  }
}
