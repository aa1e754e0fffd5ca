import { randomUUID } from "node:crypto";
import { TRPCError } from "@trpc/server";
import type { JobHandlerArgs, JobRuntime, TransactionSql } from "../jobs/index.ts";
import { toStorableText, unstorableTextAt } from "../limits/index.ts";
import type { Logger } from "../log/index.ts";
import type { SqlClient } from "../store/index.ts";
import { DEFAULT_WORKFLOW_LIMITS, type StartWorkflowOptions, type WorkflowLimits, type WorkflowRuntimeOptions } from "./config.ts";
import { Replay, type Halt } from "./replay.ts";
import {
  FINISHED_WORKFLOW_STATUSES,
  readSteps,
  readWorkflow,
  toWorkflowState,
  WORKFLOW_EVENTS_TABLE,
  WORKFLOW_STEPS_TABLE,
  WORKFLOWS_TABLE,
  type WorkflowRow,
} from "./state.ts";
import type { UntypedWorkflowClient, WorkflowDefinition, WorkflowOwner, WorkflowState } from "./types.ts";

/**
 * The job every resume of every run is (one pg-boss queue for all workflows, through the jobs
 * runtime): a dead node's resume is retried on another node once its heartbeat lapses.
 */
export const RESUME_JOB = "_tether.workflow";

/** A resume job's input: the run, and (for a sleep's or a wait's timer) the step whose deadline came. */
interface ResumeInput {
  workflowId: string;
  timer?: number;
  /**
   * A deadline further off than the queue's longest delay (`maxDelayMs`, 366 days) is reached in
   * hops: each hop's resume only enqueues the next, until the last one fires the timer.
   */
  until?: string;
}

export interface WorkflowRuntimeDeps {
  sql: SqlClient;
  log: Logger;
  /** The app's Prisma client: a run's `ctx.db`. */
  db: unknown;
  jobs: JobRuntime;
  options?: WorkflowRuntimeOptions;
}

type Viewer = { id: string; admin: boolean } | null;

const badRequest = (message: string, cause?: unknown) => new TRPCError({ code: "BAD_REQUEST", message, cause });
const notFound = () => new TRPCError({ code: "NOT_FOUND", message: "workflow not found" });
export const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * The node's workflow runtime: definitions by name, start and sendEvent (in the caller's
 * transaction), resumes (replay with persisted step results), cancel and reads. Runs on the jobs
 * runtime's pg-boss; it adds one job definition (RESUME_JOB) and nothing else to it.
 */
export class WorkflowRuntime {
  readonly limits: WorkflowLimits;
  readonly now: () => number;
  private readonly definitions = new Map<string, WorkflowDefinition>();
  /** Runs resuming on this node: cancel aborts their steps' signal here at once. */
  private readonly running = new Map<string, AbortController>();
  private readonly counters = { started: 0, resumes: 0, stepsRun: 0, completed: 0, failed: 0, parked: 0 };

  constructor(private readonly deps: WorkflowRuntimeDeps) {
    this.limits = { ...DEFAULT_WORKFLOW_LIMITS, ...deps.options?.limits };
    this.now = deps.options?.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.definitions.size > 0;
  }

  define(name: string, definition: WorkflowDefinition): void {
    if (this.definitions.has(name)) throw new Error(`workflow ${name} is defined twice`);
    if (!/^[\w.\-/]+$/.test(name)) throw new Error(`workflow name ${name}: letters, digits, _ . - / only`);
    if (this.definitions.size === 0) {
      const limits = this.limits;
      this.deps.jobs.define(RESUME_JOB, {
        schema: null,
        options: {
          retries: limits.resumeRetries,
          retryDelaySeconds: limits.resumeRetryDelaySeconds,
          // With the default delay 0 a backoff stays 0; `false` is refused by pg-boss together with
          // the retryDelayMax the jobs runtime always sends.
          retryBackoff: true,
          timeoutSeconds: limits.resumeTimeoutSeconds,
          concurrency: limits.concurrency,
          // A resume runs as long as its step: one per worker, so `concurrency` runs go at once.
          batchSize: 1,
        },
        handler: (args) => this.resume(args),
      });
    }
    this.definitions.set(name, definition);
  }

  names(): string[] {
    return [...this.definitions.keys()];
  }

  stats() {
    return { ...this.counters, running: this.running.size };
  }

  /**
   * JSON of a value, or a BAD_REQUEST (a step's or the body's failure, where the replay catches
   * it) past maxValueBytes or for text jsonb cannot hold (NUL, a lone surrogate): such a value
   * must fail loudly here, not in the UPDATE that stores it — that failure looked like a database
   * error, so the resume was retried and the step ran again and again.
   */
  json(value: unknown, what: string): string {
    // Stringify first: it refuses cycles (and BigInt), so the walk below always ends.
    const text = JSON.stringify(value === undefined ? null : value) ?? "null";
    const unstorable = unstorableTextAt(value, what);
    if (unstorable) throw badRequest(`${unstorable} holds text the database cannot store (NUL or a lone surrogate)`);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.limits.maxValueBytes) throw badRequest(`${what} is ${bytes} bytes, over maxValueBytes ${this.limits.maxValueBytes}`);
    return text;
  }

  private checkName(value: unknown, what: string): string {
    if (typeof value !== "string" || value.length === 0 || value.length > this.limits.maxNameLength) {
      throw badRequest(`${what} must be 1–${this.limits.maxNameLength} characters`);
    }
    return value;
  }

  /**
   * Starts a run inside the caller's transaction (`tx`): its row and its first resume commit or
   * roll back with it. An existing id returns that run and starts nothing.
   */
  async startIn(tx: TransactionSql, name: string, input: unknown, options: StartWorkflowOptions = {}, owner: WorkflowOwner | null = null): Promise<string> {
    const definition = this.definitions.get(name);
    // A name the types let through but the runtime lacks (an untyped ctx.workflows, a name taken
    // from input) is the caller's mistake, as for jobs: BAD_REQUEST, the name escaped and cut short.
    if (!definition) throw badRequest(`no workflow named ${JSON.stringify(String(name)).slice(0, 120)}`);
    let value = input ?? null;
    if (definition.schema) {
      const parsed = definition.schema.safeParse(input);
      if (!parsed.success) {
        throw badRequest(`invalid input for workflow ${name}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ")}`, parsed.error);
      }
      value = parsed.data ?? null;
    }
    const id = options.id === undefined ? randomUUID() : this.checkName(options.id, "workflow id");
    const inserted = await tx.query<{ id: string }>(
      `INSERT INTO "${WORKFLOWS_TABLE}" ("id", "name", "owner_id", "input") VALUES ($1, $2, $3, $4::jsonb)
       ON CONFLICT ("id") DO NOTHING RETURNING "id"`,
      [id, name, owner?.id ?? null, this.json(value, "workflow input")],
    );
    if (!inserted[0]) {
      const existing = await tx.query<{ name: string }>(`SELECT "name" FROM "${WORKFLOWS_TABLE}" WHERE "id" = $1`, [id]);
      if (existing[0] && existing[0].name !== name) throw new TRPCError({ code: "CONFLICT", message: `workflow id ${id} is a run of ${existing[0].name}` });
      return id;
    }
    await this.wake(tx, id);
    this.counters.started += 1;
    return id;
  }

  /**
   * Sends an event to a run inside the caller's transaction. It is kept until a
   * `step.waitForEvent(name)` of the run takes it (also one that waits later). A finished run
   * ignores it; an unknown id is NOT_FOUND.
   */
  async sendEventIn(tx: TransactionSql, workflowId: string, name: string, payload: unknown): Promise<void> {
    this.checkName(name, "event name");
    const body = this.json(payload, "event payload");
    const rows = await tx.query<{ status: string }>(`SELECT "status" FROM "${WORKFLOWS_TABLE}" WHERE "id" = $1`, [workflowId]);
    if (!rows[0]) throw notFound();
    if (FINISHED_WORKFLOW_STATUSES.includes(rows[0].status as never)) return;
    await tx.query(`INSERT INTO "${WORKFLOW_EVENTS_TABLE}" ("workflow_id", "name", "payload") VALUES ($1, $2, $3::jsonb)`, [workflowId, name, body]);
    await this.wake(tx, workflowId);
  }

  /** A resume of the run (at `runAt`, for step `timer`'s deadline), enqueued in `tx`. */
  wake(tx: TransactionSql, workflowId: string, timer?: number, runAt?: Date): Promise<string> {
    const hopMs = this.deps.jobs.limits.maxDelayMs;
    if (timer !== undefined && runAt && runAt.getTime() - this.now() > hopMs) {
      const input: ResumeInput = { workflowId, timer, until: runAt.toISOString() };
      return this.deps.jobs.enqueueIn(tx, RESUME_JOB, input, { runAt: new Date(this.now() + hopMs) }, null);
    }
    const input: ResumeInput = timer === undefined ? { workflowId } : { workflowId, timer };
    return this.deps.jobs.enqueueIn(tx, RESUME_JOB, input, runAt ? { runAt } : {}, null);
  }

  /** `ctx.workflows` inside a transaction (a mutation's). */
  clientIn(tx: TransactionSql, owner: WorkflowOwner | null): UntypedWorkflowClient {
    return {
      start: (name, input, options) => this.startIn(tx, name, input, options, owner),
      sendEvent: (workflowId, name, payload) => this.sendEventIn(tx, workflowId, name, payload),
    };
  }

  /** `ctx.workflows` outside a transaction (a job, a workflow, server code): each call commits at once. */
  client(owner: WorkflowOwner | null): UntypedWorkflowClient {
    // pg-boss starts before the transaction: on PGlite (one connection) its start inside one would wait for it.
    const ready = () => this.deps.jobs.start();
    return {
      start: async (name, input, options) => {
        await ready();
        return this.deps.sql.transaction((tx) => this.startIn(tx, name, input, options, owner));
      },
      sendEvent: async (workflowId, name, payload) => {
        await ready();
        await this.deps.sql.transaction((tx) => this.sendEventIn(tx, workflowId, name, payload));
      },
    };
  }

  /** The run's state if `viewer` may see it: its owner, or an admin. Otherwise NOT_FOUND, as if absent. */
  async read(id: string, viewer: Viewer): Promise<WorkflowState> {
    const row = await readWorkflow(this.deps.sql, id);
    if (!row || !viewer || (!viewer.admin && row.owner_id !== viewer.id)) throw notFound();
    return toWorkflowState(row, await readSteps(this.deps.sql, id));
  }

  /**
   * Cancels a run not yet finished (owner or admin; NOT_FOUND otherwise): no further step starts;
   * a step running on this node sees its signal abort, one on another node finishes but the run
   * stops there.
   */
  async cancel(id: string, viewer: Viewer): Promise<WorkflowState> {
    const state = await this.read(id, viewer);
    if (FINISHED_WORKFLOW_STATUSES.includes(state.status)) return state;
    await this.deps.sql.transaction(async (tx) => {
      const rows = await tx.query(
        `UPDATE "${WORKFLOWS_TABLE}" SET "status" = 'cancelled', "runner" = NULL, "wake" = false, "error" = 'cancelled',
           "finished_at" = now(), "updated_at" = now()
         WHERE "id" = $1 AND "status" NOT IN ('completed', 'failed', 'cancelled') RETURNING 1`,
        [id],
      );
      if (rows[0]) {
        await tx.query(
          `UPDATE "${WORKFLOW_STEPS_TABLE}" SET "status" = 'failed', "error" = 'cancelled', "finished_at" = now(), "updated_at" = now()
           WHERE "workflow_id" = $1 AND "status" = 'waiting'`,
          [id],
        );
      }
    });
    this.running.get(id)?.abort(new Error("workflow cancelled"));
    return this.read(id, viewer);
  }

  /**
   * One resume (the resume job's handler). Claims the run (one runner at a time; a wake while
   * another runs leaves `wake` set and returns), replays it until it parks, finishes or is lost,
   * and replays again if a wake arrived meanwhile. A throw (node stopping mid-step, a database
   * error) sends the job back to pg-boss to be retried.
   */
  private async resume({ ctx, input, signal }: JobHandlerArgs<unknown, unknown>): Promise<null> {
    const { workflowId, timer, until } = input as ResumeInput;
    const jobId = ctx.job.id;
    const { sql } = this.deps;
    if (timer !== undefined && until !== undefined && Date.parse(until) > this.now()) {
      // An intermediate hop of a long deadline: enqueue the next, leave the run alone.
      await sql.transaction((tx) => this.wake(tx, workflowId, timer, new Date(until)));
      return null;
    }
    if (timer !== undefined) {
      await sql.query(`UPDATE "${WORKFLOW_STEPS_TABLE}" SET "fired" = true, "updated_at" = now() WHERE "id" = $1 AND "status" = 'waiting' AND NOT "fired"`, [
        `${workflowId}:${timer}`,
      ]);
    }
    // Row-locked single UPDATE: two resumes racing see each other's outcome (one claims, the other flags a wake).
    const claimed = await sql.query<WorkflowRow & { claimed: boolean }>(
      `UPDATE "${WORKFLOWS_TABLE}" SET
         "runner" = CASE WHEN "runner" IS NULL OR "runner" = $2 THEN $2 ELSE "runner" END,
         "wake" = NOT ("runner" IS NULL OR "runner" = $2),
         "status" = CASE WHEN "runner" IS NULL OR "runner" = $2 THEN 'running' ELSE "status" END,
         "started_at" = coalesce("started_at", now()),
         "updated_at" = now()
       WHERE "id" = $1 AND "status" IN ('pending', 'running', 'waiting')
       RETURNING "id", "name", "owner_id", "input", "runner" = $2 AS "claimed"`,
      [workflowId, jobId],
    );
    const row = claimed[0];
    if (!row?.claimed) return null;
    this.counters.resumes += 1;
    const local = new AbortController();
    this.running.set(workflowId, local);
    const stop = AbortSignal.any([signal, local.signal]);
    try {
      for (;;) {
        const halt = await this.replay(row, jobId, stop);
        if (halt.kind === "lost") return null;
        if (halt.kind === "interrupted") {
          if (local.signal.aborted) return null; // cancelled here: nothing to retry
          throw halt.error instanceof Error ? halt.error : new Error(String(halt.error));
        }
        if (halt.kind === "completed" || halt.kind === "failed") {
          await sql.query(
            `UPDATE "${WORKFLOWS_TABLE}" SET "status" = $3, "output" = $4::jsonb, "error" = $5, "runner" = NULL, "wake" = false,
               "finished_at" = now(), "updated_at" = now()
             WHERE "id" = $1 AND "runner" = $2`,
            halt.kind === "completed" ? [workflowId, jobId, "completed", halt.output, null] : [workflowId, jobId, "failed", null, halt.error],
          );
          this.counters[halt.kind] += 1;
          return null;
        }
        // Parked (a sleep, a wait): let go of the run, unless a wake came while it ran.
        const released = await sql.query<{ runner: string | null }>(
          `UPDATE "${WORKFLOWS_TABLE}" SET "runner" = CASE WHEN "wake" THEN "runner" ELSE NULL END,
             "status" = CASE WHEN "wake" THEN "status" ELSE 'waiting' END, "wake" = false, "updated_at" = now()
           WHERE "id" = $1 AND "runner" = $2 RETURNING "runner"`,
          [workflowId, jobId],
        );
        this.counters.parked += 1;
        if (!released[0] || released[0].runner === null) return null;
      }
    } catch (error) {
      // Let go so a wake or this job's retry can claim it.
      await sql
        .query(`UPDATE "${WORKFLOWS_TABLE}" SET "runner" = NULL, "updated_at" = now() WHERE "id" = $1 AND "runner" = $2`, [workflowId, jobId])
        .catch(() => undefined);
      throw error;
    } finally {
      this.running.delete(workflowId);
    }
  }

  /** Runs the body from the top; persisted steps return their results, the first new one runs. */
  private async replay(row: WorkflowRow, jobId: string, signal: AbortSignal): Promise<Halt> {
    const definition = this.definitions.get(row.name);
    if (!definition) return { kind: "failed", error: `no workflow named ${row.name} on this node` };
    const steps = await readSteps(this.deps.sql, row.id);
    const replay = new Replay(this, this.deps.sql, { id: row.id, name: row.name }, jobId, steps, signal, () => (this.counters.stepsRun += 1));
    const owner = row.owner_id ? { id: row.owner_id } : null;
    const body: Promise<Halt> = Promise.resolve()
      .then(() =>
        definition.handler({
          step: replay.steps,
          input: row.input ?? null,
          ctx: { db: this.deps.db, user: owner, workflow: { id: row.id, name: row.name }, workflows: this.client(owner), log: this.deps.log },
        }),
      )
      .then(
        (output): Halt => {
          try {
            return { kind: "completed", output: this.json(output, "workflow output") };
          } catch (error) {
            return { kind: "failed", error: this.clip(errorMessage(error)) };
          }
        },
        (error: unknown): Halt => (signal.aborted ? { kind: "interrupted", error } : { kind: "failed", error: this.clip(errorMessage(error)) }),
      );
    const halt = await Promise.race([body, replay.halted]);
    // Steps still running (started together with the one that parked) finish and persist first.
    await replay.settled();
    return halt;
  }

  /** An error message as stored: cut at maxErrorLength, NUL and lone surrogates replaced by U+FFFD. */
  clip(message: string): string {
    return toStorableText(message.slice(0, this.limits.maxErrorLength));
  }
}
