import type { z } from "zod";
import type { WorkflowDefinition, WorkflowHandler, WorkflowProcedure } from "./types.ts";

/**
 * `tether.workflow.input(schema).run(fn)`: builds a workflow as a procedure for a workflows
 * router (like `tether.job`). Each step returns a new builder.
 */
export class WorkflowBuilder<Client, InputIn, InputOut> {
  constructor(
    private readonly schema: z.ZodType | null,
    private readonly build: (definition: WorkflowDefinition) => unknown,
  ) {}

  /** The input schema: start validates against it (BAD_REQUEST); the body gets its output. */
  input<S extends z.ZodType>(schema: S): WorkflowBuilder<Client, z.input<S>, z.output<S>> {
    return new WorkflowBuilder<Client, z.input<S>, z.output<S>>(schema, this.build);
  }

  /** The body, replayed on every resume (see WorkflowHandler). Its return value is the run's `output`. */
  run<Output>(fn: WorkflowHandler<Client, InputOut, Output>): WorkflowProcedure<InputIn, Awaited<Output>> {
    return this.build({ schema: this.schema, handler: fn as WorkflowHandler<unknown, unknown, unknown> }) as WorkflowProcedure<InputIn, Awaited<Output>>;
  }
}
