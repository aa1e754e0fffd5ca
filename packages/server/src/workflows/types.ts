import type { TRPCMutationProcedure } from "@trpc/server";
import type { JobInput, JobName, JobOutput } from "../jobs/index.ts";
import type { z } from "zod";
import type { Logger } from "../log/index.ts";
import type { StartWorkflowOptions, WaitForEventOptions } from "./config.ts";

// What `$workflows.get` answers is wire protocol (@tether/protocol).
export type { StepKind, StepStatus, WorkflowState, WorkflowStatus, WorkflowStepState } from "@tether/protocol";

/** What a `step.run` function gets. */
export interface StepRunArgs {
  /**
   * `${workflowId}:${stepName}`: the same on every attempt of this step. A step runs at least
   * once (again after a crash mid-way): pass this to whatever the step changes outside the
   * database (a payment, an email) so a second attempt is recognised there.
   */
  idempotencyKey: string;
  /** 1 on the first attempt, 2 after a crash mid-way, … */
  attempt: number;
  /** Aborted when the run is cancelled on this node, times out, or the node shuts down. */
  signal: AbortSignal;
}

/**
 * The steps of a workflow. Each call takes the next position; on a resume, positions already
 * passed return their persisted result without running. Step names are unique within a run.
 */
export interface WorkflowSteps {
  /** Runs `fn` once to completion (at least once: see StepRunArgs) and persists its JSON result. */
  run<T>(name: string, fn: (args: StepRunArgs) => Promise<T> | T): Promise<T>;
  /** Durable sleep: the run ends here and resumes at the deadline fixed when it was first reached. */
  sleep(name: string, ms: number): Promise<void>;
  /** Durable sleep until `date` (already past: returns at once). */
  sleepUntil(name: string, date: Date): Promise<void>;
  /**
   * The next event of this name sent to the run (`sendEvent`), also one sent before the wait;
   * null once `timeout` ms passed without one.
   */
  waitForEvent<T = unknown>(name: string, options?: WaitForEventOptions): Promise<T | null>;
}

/** Who started a workflow: the run sees it as `ctx.user`; only they (or an admin) may read or cancel it. */
export interface WorkflowOwner {
  id: string;
}

export interface WorkflowContext<Client> {
  /** The app's Prisma client, not policy-scoped: a workflow runs as the system. */
  db: Client;
  /** The user whose call started the run (null: the system). */
  user: WorkflowOwner | null;
  workflow: { id: string; name: string };
  /** Start other workflows / send events (each commits at once). */
  workflows: UntypedWorkflowClient;
  log: Logger;
}

export interface WorkflowRunArgs<Client, Input> {
  step: WorkflowSteps;
  input: Input;
  ctx: WorkflowContext<Client>;
}

/**
 * The workflow's body. It is replayed from the top on every resume: everything with an effect
 * or a non-deterministic value (time, random ids, reads that may change) belongs in a step.
 */
export type WorkflowHandler<Client, Input, Output> = (args: WorkflowRunArgs<Client, Input>) => Promise<Output> | Output;

export interface WorkflowDefinition {
  readonly schema: z.ZodType | null;
  readonly handler: WorkflowHandler<unknown, unknown, unknown>;
}

/** A workflow in a router: a mutation procedure typed with its input and output, not callable by clients. */
export type WorkflowProcedure<Input, Output> = TRPCMutationProcedure<{ input: Input; output: Output; meta: unknown }>;

/** Workflows routers have the shape of jobs routers: the same name and type helpers serve both. */
export type WorkflowName<T> = JobName<T>;
export type WorkflowInput<T, N extends WorkflowName<T>> = JobInput<T, N>;
/** A workflow's output type: `useWorkflow<WorkflowOutput<Workflows, "welcome">>(id)`. */
export type WorkflowOutput<T, N extends WorkflowName<T>> = JobOutput<T, N>;

/** `ctx.workflows` before it is typed by a router. */
export interface UntypedWorkflowClient {
  /** Starts a run (idempotent by `options.id`) and returns its id. In a mutation it joins the transaction. */
  start(name: string, input?: unknown, options?: StartWorkflowOptions): Promise<string>;
  /** Sends an event to a run (kept until a waitForEvent of that name takes it). In a mutation it joins the transaction. */
  sendEvent(workflowId: string, name: string, payload?: unknown): Promise<void>;
}

/** `ctx.workflows` typed by a workflows router (`tether.withWorkflows(workflows).mutation`). */
export interface WorkflowClient<Workflows> extends UntypedWorkflowClient {
  start<N extends WorkflowName<Workflows>>(
    name: N,
    ...args: undefined extends WorkflowInput<Workflows, N>
      ? [input?: WorkflowInput<Workflows, N>, options?: StartWorkflowOptions]
      : [input: WorkflowInput<Workflows, N>, options?: StartWorkflowOptions]
  ): Promise<string>;
}

