import type { SqlClient, SqlConnection } from "../store/index.ts";
import { resultOf, stepId, WORKFLOW_EVENTS_TABLE, WORKFLOW_STEPS_TABLE, WORKFLOWS_TABLE, type StepRow } from "./state.ts";
import type { StepKind, StepRunArgs, WorkflowSteps } from "./types.ts";
import type { WaitForEventOptions } from "./config.ts";

/** How one replay of a run ended. */
export type Halt =
  /** At a sleep or wait not yet due: the run waits for its timer or event. */
  | { kind: "parked" }
  /** The body returned (output as JSON text). */
  | { kind: "completed"; output: string }
  | { kind: "failed"; error: string }
  /** The run was cancelled, or another resume holds it: stop without a trace. */
  | { kind: "lost" }
  /** The node is stopping, the resume timed out or was cancelled here, mid-step: retry the resume. */
  | { kind: "interrupted"; error: unknown };

/** A step's own failure, as the body sees it (the same on replay: the message was persisted). */
export class WorkflowStepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(`step "${step}" failed: ${message}`);
    this.name = "WorkflowStepError";
  }
}

/** Never settles: a step call after the run halted (parked, lost, failed loudly) goes no further. */
const NEVER = new Promise<never>(() => undefined);
/** What a step's inner work returns once the run halted: it settles (so `settled()` ends), the body sees NEVER. */
const HALTED: unique symbol = Symbol("halted");

/** Rolls back a step transaction whose run was lost meanwhile. */
class Lost extends Error {}

interface RuntimeView {
  readonly limits: { maxSteps: number; maxNameLength: number; clockSkewMs: number };
  readonly now: () => number;
  json(value: unknown, what: string): string;
  clip(message: string): string;
  wake(tx: Pick<SqlConnection, "query">, workflowId: string, timer?: number, runAt?: Date): Promise<string>;
}

/**
 * One replay of a run: hands out step positions in call order, returns persisted results for
 * positions already passed, and runs (and persists) the first new one. Halting (park, loss, a
 * loud failure) resolves `halted` and leaves the body's pending step calls unsettled, so a
 * try/catch in the body cannot swallow it.
 */
export class Replay {
  readonly halted: Promise<Halt>;
  readonly steps: WorkflowSteps;
  private resolveHalt!: (halt: Halt) => void;
  private halt: Halt | null = null;
  private cursor = 0;
  private readonly names = new Set<string>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly persisted = new Map<number, StepRow>();

  constructor(
    private readonly runtime: RuntimeView,
    private readonly sql: SqlClient,
    private readonly workflow: { id: string; name: string },
    private readonly runner: string,
    persisted: StepRow[],
    private readonly signal: AbortSignal,
    private readonly onStepRun: () => void,
  ) {
    this.halted = new Promise<Halt>((resolve) => (this.resolveHalt = resolve));
    for (const row of persisted) this.persisted.set(row.idx, row);
    this.steps = {
      run: (name, fn) => this.track(this.run(name, fn)),
      sleep: (name, ms) => this.track(this.sleep(name, () => this.runtime.now() + ms, ms)),
      sleepUntil: (name, date) => this.track(this.sleep(name, () => date.getTime(), date)),
      waitForEvent: <T>(name: string, options: WaitForEventOptions = {}) => this.track(this.waitForEvent(name, options)) as Promise<T | null>,
    };
  }

  /** Waits for step calls still running (after the body settled or the run halted). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    const done = () => this.inflight.delete(promise);
    promise.then(done, done);
    return promise.then(
      (value) => ((value as unknown) === HALTED ? NEVER : value),
      (error: unknown) => {
        // A step's own failure is the body's to handle; anything else (the database failing
        // under a step's bookkeeping) is not the workflow's fault: the resume is retried.
        if (error instanceof WorkflowStepError) throw error;
        return this.stop({ kind: "interrupted", error }) as unknown as Promise<T>;
      },
    ).then((value) => ((value as unknown) === HALTED ? NEVER : value));
  }

  /** Halts the replay; the step's inner work returns this (typed as never for its callers). */
  private stop(halt: Halt): never {
    if (!this.halt) {
      this.halt = halt;
      this.resolveHalt(halt);
    }
    return HALTED as never;
  }

  /** The next position for a step of this name and kind, or a halt (replay mismatch, bad name, too many steps). */
  private take(name: unknown, kind: StepKind): { index: number; name: string; existing: StepRow | undefined } | null {
    if (this.halt) return null;
    const limits = this.runtime.limits;
    if (typeof name !== "string" || name.length === 0 || name.length > limits.maxNameLength) {
      void this.stop({ kind: "failed", error: `a step name must be 1–${limits.maxNameLength} characters` });
      return null;
    }
    if (this.names.has(name)) {
      void this.stop({ kind: "failed", error: `step name "${name}" is used twice in one run (step names are unique: add the loop index)` });
      return null;
    }
    this.names.add(name);
    const index = this.cursor;
    this.cursor += 1;
    if (index >= limits.maxSteps) {
      void this.stop({ kind: "failed", error: `more than maxSteps (${limits.maxSteps}) steps` });
      return null;
    }
    const existing = this.persisted.get(index);
    if (existing && (existing.name !== name || existing.kind !== kind)) {
      void this.stop({
        kind: "failed",
        error:
          `non-deterministic replay: step ${index} was ${existing.kind} "${existing.name}" when it ran, now ${kind} "${name}". ` +
          `A run's steps must come in the same order on every replay; start new runs for changed code.`,
      });
      return null;
    }
    return { index, name, existing };
  }

  /** Statement prefix: the run is still ours (running, claimed by this runner); it becomes its current step. */
  private ours(): string {
    return `WITH w AS (UPDATE "${WORKFLOWS_TABLE}" SET "current_step" = $3, "step_count" = greatest("step_count", $4 + 1), "updated_at" = now()
      WHERE "id" = $1 AND "runner" = $2 AND "status" = 'running' RETURNING "id")`;
  }

  private async run<T>(rawName: string, fn: (args: StepRunArgs) => Promise<T> | T): Promise<T> {
    const taken = this.take(rawName, "run");
    if (!taken) return HALTED as never;
    const { index, name, existing } = taken;
    if (existing?.status === "completed") return resultOf(existing.result) as T;
    if (existing?.status === "failed") throw new WorkflowStepError(name, existing.error ?? "failed");
    // Running (a crash mid-way left it so) or new: run it (again).
    const id = stepId(this.workflow.id, index);
    const started = await this.sql.query<{ attempts: number }>(
      `${this.ours()}
       INSERT INTO "${WORKFLOW_STEPS_TABLE}" ("id", "workflow_id", "idx", "name", "kind", "status", "attempts", "started_at")
       SELECT $5, $1, $4, $3, 'run', 'running', 1, now() FROM w
       ON CONFLICT ("id") DO UPDATE SET "status" = 'running', "attempts" = "${WORKFLOW_STEPS_TABLE}"."attempts" + 1,
         "started_at" = now(), "error" = NULL, "updated_at" = now()
       RETURNING "attempts"`,
      [this.workflow.id, this.runner, name, index, id],
    );
    if (!started[0]) return this.stop({ kind: "lost" });
    this.onStepRun();
    let value: unknown;
    try {
      value = await fn({ idempotencyKey: `${this.workflow.id}:${name}`, attempt: started[0].attempts, signal: this.signal });
    } catch (error) {
      // Stopped from outside mid-step: not the step's failure; it runs again on the retry.
      if (this.signal.aborted) return this.stop({ kind: "interrupted", error });
      return this.fail(id, name, error);
    }
    let json: string;
    try {
      json = this.runtime.json({ v: value === undefined ? null : value }, `result of step "${name}"`);
    } catch (error) {
      return this.fail(id, name, error);
    }
    await this.sql.query(
      `UPDATE "${WORKFLOW_STEPS_TABLE}" SET "status" = 'completed', "result" = $2::jsonb, "finished_at" = now(), "updated_at" = now() WHERE "id" = $1`,
      [id, json],
    );
    // What a replay will return: the JSON round trip, the same on the first run.
    return (JSON.parse(json) as { v: T }).v;
  }

  private async fail(id: string, name: string, error: unknown): Promise<never> {
    const message = this.runtime.clip(error instanceof Error ? error.message : String(error));
    await this.sql.query(
      `UPDATE "${WORKFLOW_STEPS_TABLE}" SET "status" = 'failed', "error" = $2, "finished_at" = now(), "updated_at" = now() WHERE "id" = $1`,
      [id, message],
    );
    throw new WorkflowStepError(name, message);
  }

  /** Inserts a new sleep/event step (waiting, or at once completed), ours only; Lost rolls the caller's transaction back. */
  private async insertStep(
    tx: Pick<SqlConnection, "query">,
    index: number,
    name: string,
    kind: StepKind,
    fields: { status: "waiting" | "completed"; wakeAt: Date | null; result?: string },
  ): Promise<void> {
    const rows = await tx.query(
      `${this.ours()}
       INSERT INTO "${WORKFLOW_STEPS_TABLE}" ("id", "workflow_id", "idx", "name", "kind", "status", "attempts", "wake_at", "result", "started_at", "finished_at")
       SELECT $5, $1, $4, $3, $6, $7, 1, $8::timestamptz, $9::jsonb, now(), CASE WHEN $7 = 'completed' THEN now() END FROM w
       ON CONFLICT ("id") DO UPDATE SET "status" = EXCLUDED."status", "result" = EXCLUDED."result",
         "finished_at" = EXCLUDED."finished_at", "updated_at" = now()
       RETURNING 1`,
      [this.workflow.id, this.runner, name, index, stepId(this.workflow.id, index), kind, fields.status, fields.wakeAt?.toISOString() ?? null, fields.result ?? null],
    );
    if (!rows[0]) throw new Lost();
  }

  private async inTransaction(fn: (tx: Pick<SqlConnection, "query">) => Promise<void>): Promise<boolean> {
    try {
      await this.sql.transaction(fn);
      return true;
    } catch (error) {
      if (error instanceof Lost) return false;
      throw error;
    }
  }

  private due(row: StepRow): boolean {
    if (row.fired) return true;
    if (row.wake_at === null) return false;
    return new Date(row.wake_at).getTime() - this.runtime.limits.clockSkewMs <= this.runtime.now();
  }

  private async complete(index: number, name: string, kind: StepKind, result: string): Promise<boolean> {
    return this.inTransaction((tx) => this.insertStep(tx, index, name, kind, { status: "completed", wakeAt: null, result }));
  }

  private async sleep(rawName: string, deadline: () => number, given: unknown): Promise<void> {
    const taken = this.take(rawName, "sleep");
    if (!taken) return HALTED as never;
    const { index, name, existing } = taken;
    if (existing?.status === "completed") return;
    if (existing) {
      if (!this.due(existing)) return this.stop({ kind: "parked" });
      if (!(await this.complete(index, name, "sleep", '{"v":null}'))) return this.stop({ kind: "lost" });
      return;
    }
    const at = deadline();
    // Past what a Date can hold (±8.64e15 ms) is no time either: it could never be stored.
    if (!Number.isFinite(new Date(at).getTime())) return this.stop({ kind: "failed", error: `sleep "${name}": ${String(given)} is not a time` });
    const due = at - this.runtime.limits.clockSkewMs <= this.runtime.now();
    const ours = await this.inTransaction(async (tx) => {
      await this.insertStep(tx, index, name, "sleep", due ? { status: "completed", wakeAt: new Date(at), result: '{"v":null}' } : { status: "waiting", wakeAt: new Date(at) });
      // The wake-up is a delayed job committed with the step: a restart still wakes on this deadline.
      if (!due) await this.runtime.wake(tx, this.workflow.id, index, new Date(at));
    });
    if (!ours) return this.stop({ kind: "lost" });
    if (!due) return this.stop({ kind: "parked" });
  }

  private async waitForEvent(rawName: string, options: WaitForEventOptions): Promise<unknown> {
    const taken = this.take(rawName, "event");
    if (!taken) return HALTED as never;
    const { index, name, existing } = taken;
    if (existing?.status === "completed") return resultOf(existing.result);
    if (
      options.timeout !== undefined &&
      !(Number.isFinite(options.timeout) && options.timeout >= 0 && Number.isFinite(new Date(this.runtime.now() + options.timeout).getTime()))
    ) {
      return this.stop({ kind: "failed", error: `waitForEvent "${name}": timeout must be a number of ms >= 0 that ends at a representable time` });
    }
    let outcome: { value: unknown } | null = null;
    const ours = await this.inTransaction(async (tx) => {
      const events = await tx.query<{ payload: unknown }>(
        `UPDATE "${WORKFLOW_EVENTS_TABLE}" SET "step_idx" = $3
         WHERE "id" = (SELECT "id" FROM "${WORKFLOW_EVENTS_TABLE}" WHERE "workflow_id" = $1 AND "name" = $2 AND "step_idx" IS NULL ORDER BY "id" LIMIT 1)
         RETURNING "payload"`,
        [this.workflow.id, name, index],
      );
      if (events[0]) {
        const value = events[0].payload ?? null;
        await this.insertStep(tx, index, name, "event", { status: "completed", wakeAt: null, result: JSON.stringify({ v: value }) });
        outcome = { value };
        return;
      }
      if (existing) {
        if (this.due(existing)) {
          await this.insertStep(tx, index, name, "event", { status: "completed", wakeAt: null, result: '{"v":null}' });
          outcome = { value: null };
        }
        return;
      }
      if (options.timeout === 0) {
        await this.insertStep(tx, index, name, "event", { status: "completed", wakeAt: null, result: '{"v":null}' });
        outcome = { value: null };
        return;
      }
      const at = options.timeout === undefined ? null : new Date(this.runtime.now() + options.timeout);
      await this.insertStep(tx, index, name, "event", { status: "waiting", wakeAt: at });
      if (at) await this.runtime.wake(tx, this.workflow.id, index, at);
    });
    if (!ours) return this.stop({ kind: "lost" });
    if (outcome) return (outcome as { value: unknown }).value;
    return this.stop({ kind: "parked" });
  }
}
