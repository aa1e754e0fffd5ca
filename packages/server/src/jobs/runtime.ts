import { createHash, randomUUID } from "node:crypto";
import { TRPCError } from "@trpc/server";
import { PgBoss, fromPglite, type ConstructorOptions, type Db, type JobResult, type JobWithMetadata, type SendOptions } from "pg-boss";
import type { Logger } from "../log/index.ts";
import { MIGRATE_LOCK_KEY } from "../migrate/index.ts";
import { toStorableText, unstorableTextAt } from "../limits/index.ts";
import type { DatabaseDriver, SqlClient, SqlConnection } from "../store/index.ts";
import { DEFAULT_JOB_LIMITS, type EnqueueOptions, type JobDefinitionOptions, type JobLimits, type JobRuntimeOptions } from "./config.ts";
import { FINISHED_STATUSES, insertJobRow, markStarted, readJob, syncTriggerSql, toJobState, trimFinished, writeProgress, type JobState } from "./jobState.ts";
import { settleOrAbandon } from "./abandon.ts";
import { ProgressCoalescer } from "./progress.ts";
import type { JobDefinition, JobOwner, UntypedJobClient } from "./types.ts";

/** Prefix of Tether's pg-boss queues (`tether.exportCsv`): apart from pg-boss's own and the app's. */
const QUEUE_PREFIX = "tether.";
/** One dead-letter queue for every Tether job: a job out of attempts is copied here. */
export const DEAD_LETTER_QUEUE = "tether-dead-letters";
/** pg-boss's key for Tether's schedules (one per cron expression and input of a job). */
const SCHEDULE_KEY_PREFIX = "tether-";

/** What pg-boss carries for a Tether job. */
interface Envelope {
  input: unknown;
  owner: string | null;
  /** Enqueued through Tether: its state row exists and the sync trigger marks its starts. */
  row?: true;
}

/** A raw SQL connection inside some transaction: Tether's rows and pg-boss's insert share it. */
export type TransactionSql = Pick<SqlConnection, "query">;

export interface CronEntry {
  expression: string;
  name: string;
  input: unknown;
  timezone: string;
}

export interface ScheduleInfo {
  name: string;
  cron: string;
  timezone: string;
  input: unknown;
  /** Next tick at or after now, by the schedule's expression (pg-boss's own preview). */
  nextRunAt: string | null;
}

export interface DeadLetter {
  /** The dead letter's own id (retry it by this). */
  id: string;
  /** The failed job's id (its state row keeps its history). */
  jobId: string | null;
  name: string;
  error: string | null;
  attempts: number | null;
  failedAt: string;
}

export interface QueueDepth {
  name: string;
  queued: number;
  active: number;
  deferred: number;
  failed: number;
}

export type JobOutcome = "completed" | "failed";
export type JobFinishedListener = (event: { name: string; outcome: JobOutcome; seconds: number }) => void;

export interface JobRuntimeDeps {
  driver: DatabaseDriver;
  sql: SqlClient;
  log: Logger;
  /** The app's Prisma client: handlers' `ctx.db`. */
  db: unknown;
  options?: JobRuntimeOptions;
}

const badRequest = (message: string, cause?: unknown) => new TRPCError({ code: "BAD_REQUEST", message, cause });
const notFound = (message = "job not found") => new TRPCError({ code: "NOT_FOUND", message });
// NUL cannot be stored in Postgres text or jsonb: a handler's error message that echoes its input
// must not make the failure itself unrecordable.
const errorMessage = (error: unknown) => toStorableText(error instanceof Error ? error.message : String(error));
/** Postgres `integer` (pg-boss's priority column). */
const INT32_MAX = 2 ** 31 - 1;
/** pg-boss's own bound on expireInSeconds (MAX_EXPIRATION_HOURS). */
const MAX_TIMEOUT_SECONDS = 24 * 3600;
const queueOf = (name: string) => QUEUE_PREFIX + name;
const nameOf = (queue: string) => (queue.startsWith(QUEUE_PREFIX) ? queue.slice(QUEUE_PREFIX.length) : queue);

/** pg-boss's `db` option over a raw SQL connection (a transaction of the store, or of Prisma). */
export const bossDb = (sql: TransactionSql): Db => ({
  executeSql: async (text, values) => ({ rows: await sql.query(text, values ?? []) }),
});

/**
 * The node's job runtime over pg-boss: definitions by name, enqueue (in the caller's
 * transaction), the workers that run handlers with progress and cancellation, cron schedules,
 * dead letters and graceful stop. pg-boss is made (and its schema created) only by `start()`,
 * which the Tether instance calls only when the app defines a job or a schedule.
 */
export class JobRuntime {
  readonly limits: JobLimits;
  private readonly definitions = new Map<string, JobDefinition>();
  private readonly crons: CronEntry[] = [];
  private boss: PgBoss | null = null;
  private starting: Promise<void> | null = null;
  private stopped = false;
  private readonly running = new Map<string, AbortController>();
  private readonly finishedListeners = new Set<JobFinishedListener>();
  private trimTimer: ReturnType<typeof setInterval> | null = null;
  private readonly counters = { enqueued: 0, started: 0, completed: 0, failed: 0, progressWrites: 0 };

  constructor(private readonly deps: JobRuntimeDeps) {
    this.limits = { ...DEFAULT_JOB_LIMITS, ...deps.options?.limits };
  }

  /** Whether the app defined any job or schedule (an app without needs no pg-boss). */
  get enabled(): boolean {
    return this.definitions.size > 0 || this.crons.length > 0;
  }

  get started(): boolean {
    return this.boss !== null && !this.stopped;
  }

  define(name: string, definition: JobDefinition): void {
    if (this.starting) throw new Error(`job ${name} defined after the job runtime started`);
    if (this.definitions.has(name)) throw new Error(`job ${name} is defined twice`);
    if (!/^[\w.\-/]+$/.test(name)) throw new Error(`job name ${name}: letters, digits, _ . - / only`);
    const problem = definitionProblem(definition.options, this.limits);
    // At definition, so a bad option fails the app's start, not every enqueue with a 500.
    if (problem) throw new Error(`job ${name}: ${problem}`);
    this.definitions.set(name, definition);
  }

  names(): string[] {
    return [...this.definitions.keys()];
  }

  addCron(entry: CronEntry): void {
    if (this.starting) throw new Error(`cron for ${entry.name} added after the job runtime started`);
    this.crons.push(entry);
  }

  onFinished(listener: JobFinishedListener): () => void {
    this.finishedListeners.add(listener);
    return () => this.finishedListeners.delete(listener);
  }

  /** Starts pg-boss (creating its schema), the workers and schedules. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.doStart().catch((error: unknown) => {
      this.starting = null;
      throw error;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    // Cron expressions are checked before anything is created.
    for (const cron of this.crons) {
      if (!this.definitions.has(cron.name)) throw new Error(`cron ${cron.expression}: no job named ${cron.name}`);
    }
    const { driver, log } = this.deps;
    const options = this.deps.options ?? {};
    const limits = this.limits;
    const common: ConstructorOptions = {
      schema: options.schema ?? "pgboss",
      useListenNotify: true,
      schedule: options.schedule !== false && this.crons.length > 0,
      superviseIntervalSeconds: limits.superviseIntervalSeconds,
      monitorIntervalSeconds: limits.superviseIntervalSeconds,
      cronMonitorIntervalSeconds: limits.cronMonitorIntervalSeconds,
      cronWorkerIntervalSeconds: limits.cronWorkerIntervalSeconds,
      openTelemetry: { enabled: false },
      ...(options.clock ? { clock: options.clock } : {}),
    };
    const boss =
      driver.engine === "pglite"
        ? new PgBoss({ ...common, db: fromPglite(driver.pglite), backend: "pglite" })
        : new PgBoss({ ...common, connectionString: driver.url, max: limits.poolSize, application_name: "tether-jobs" });
    boss.on("error", (error) => log.error({ err: errorMessage(error) }, "job runtime error"));
    boss.on("warning", (warning) => log.warn({ warning: warning.message }, "job runtime warning"));
    await boss.start();
    this.boss = boss;
    await this.installSyncTrigger(common.schema!);

    await boss.createQueue(DEAD_LETTER_QUEUE);
    for (const name of this.definitions.keys()) {
      await boss.createQueue(queueOf(name), { notify: true, deadLetter: DEAD_LETTER_QUEUE });
    }
    if (options.work !== false) {
      for (const [name, definition] of this.definitions) {
        // A worker runs its whole batch at once and fetches again only when all of it finished:
        // workers × batch stays within `concurrency`, and a batch is at most a quarter of it, so
        // one long job idles few slots beside it (head-of-line) while the other workers go on.
        const concurrency = definition.options.concurrency ?? limits.concurrency;
        const batchSize = definition.options.batchSize ?? Math.max(1, Math.min(limits.batchSize, Math.floor(concurrency / 4)));
        await boss.work(
          queueOf(name),
          {
            localConcurrency: Math.max(1, Math.floor(concurrency / batchSize)),
            batchSize,
            includeMetadata: true,
            perJobResults: true,
            heartbeatRefreshSeconds: limits.heartbeatRefreshSeconds,
            pollingIntervalSeconds: limits.pollingIntervalSeconds,
            notifyPollingIntervalSeconds: limits.pollingIntervalSeconds,
            burstWhenBatchFull: limits.burstWhenBatchFull,
          },
          (jobs: JobWithMetadata<Envelope>[]) => Promise.all(jobs.map((job) => this.runJob(name, definition, job))),
        );
      }
    }
    await this.syncSchedules();
    this.trimTimer = setInterval(() => void this.trim().catch((error: unknown) => log.warn({ err: errorMessage(error) }, "job state trim failed")), limits.stateTrimIntervalMs);
    this.trimTimer.unref?.();
  }

  /** The trigger mirroring pg-boss's states into `_tether_jobs`; once per database, under the migration lock. */
  private async installSyncTrigger(schema: string): Promise<void> {
    await this.deps.sql.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATE_LOCK_KEY]);
      const present = await tx.query(
        `SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE t.tgname = '_tether_job_sync' AND c.relname = 'job' AND n.nspname = $1`,
        [schema],
      );
      if (present.length === 0) await tx.query(syncTriggerSql(schema));
    });
  }

  private sendOptions(name: string, options: EnqueueOptions = {}): SendOptions {
    const definition = this.definitions.get(name)!.options;
    const limits = this.limits;
    const now = Date.now();
    // A past runAt means now (and keeps far-past Dates out of Postgres's timestamp range).
    const runAt = options.runAt ? new Date(Math.max(now, options.runAt.getTime())) : options.delay ? new Date(now + options.delay) : undefined;
    const retryBackoff = definition.retryBackoff ?? limits.retryBackoff;
    return {
      priority: options.priority ?? definition.priority ?? 0,
      retryLimit: options.retries ?? definition.retries ?? limits.retries,
      retryDelay: definition.retryDelaySeconds ?? limits.retryDelaySeconds,
      retryBackoff,
      // pg-boss refuses a maximum delay without backoff (every send failed, a 500).
      ...(retryBackoff ? { retryDelayMax: definition.retryDelayMaxSeconds ?? limits.retryDelayMaxSeconds } : {}),
      expireInSeconds: definition.timeoutSeconds ?? limits.timeoutSeconds,
      heartbeatSeconds: definition.heartbeatSeconds ?? limits.heartbeatSeconds,
      deadLetter: DEAD_LETTER_QUEUE,
      ...(runAt ? { startAfter: runAt } : {}),
    };
  }

  /** Validates an enqueue: the job exists, the input passes its schema, the options are sane. */
  private prepare(name: string, input: unknown, options: EnqueueOptions = {}): { input: unknown } {
    // The name often comes from a client through an untyped ctx.jobs: its mistake, not a 500.
    const definition = typeof name === "string" ? this.definitions.get(name) : undefined;
    if (!definition) throw badRequest(`no job named ${JSON.stringify(String(name)).slice(0, 120)}`);
    const problem = enqueueOptionsProblem(options, this.limits);
    if (problem) throw badRequest(problem);
    let value = input ?? null;
    if (definition.schema) {
      const parsed = definition.schema.safeParse(input);
      if (!parsed.success) throw badRequest(`invalid input for job ${name}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ")}`, parsed.error);
      value = parsed.data ?? null;
    }
    // The input is stored as jsonb, which holds no NUL and no lone surrogate: say so, not a 500.
    const unstorable = unstorableTextAt(value);
    if (unstorable) throw badRequest(`${unstorable} of job ${name} holds text the database cannot store (NUL or a lone surrogate)`);
    return { input: value };
  }

  /**
   * Enqueues inside the caller's transaction (`tx`): the state row and pg-boss's job commit or
   * roll back with it. Returns the job's id (an existing one's when `key` matches a job not yet
   * finished).
   */
  async enqueueIn(tx: TransactionSql, name: string, input: unknown, options: EnqueueOptions = {}, owner: JobOwner | null = null): Promise<string> {
    const prepared = this.prepare(name, input, options);
    const boss = await this.ready();
    const send = this.sendOptions(name, options);
    const row = await insertJobRow(tx, {
      id: randomUUID(),
      name,
      ownerId: owner?.id ?? null,
      key: options.key === undefined ? null : scopedKey(options.key, this.definitions.get(name)!.options, owner),
      maxAttempts: (send.retryLimit ?? 0) + 1,
      runAt: send.startAfter instanceof Date ? send.startAfter : new Date(),
    });
    if (!row.inserted) return row.id;
    const envelope: Envelope = { input: prepared.input, owner: owner?.id ?? null, row: true };
    const id = await boss.send(queueOf(name), envelope as unknown as object, { ...send, id: row.id, db: bossDb(tx) });
    if (id !== row.id) throw new Error(`pg-boss did not take job ${row.id} (${String(id)})`);
    this.counters.enqueued += 1;
    return id;
  }

  /** Enqueues at once, in a transaction of its own. */
  async enqueueNow(name: string, input: unknown, options: EnqueueOptions = {}, owner: JobOwner | null = null): Promise<string> {
    this.prepare(name, input, options); // fail before opening a transaction
    await this.ready();
    return this.deps.sql.transaction((tx) => this.enqueueIn(tx, name, input, options, owner));
  }

  /** `ctx.jobs` of code outside a transaction (job handlers, server code): each enqueue commits at once. */
  client(owner: JobOwner | null): UntypedJobClient {
    return { enqueue: (name, input, options) => this.enqueueNow(name, input, options, owner) };
  }

  /** The job's state if `viewer` may see it: its owner, or an admin. Otherwise NOT_FOUND, as if absent. */
  async read(id: string, viewer: { id: string; admin: boolean } | null): Promise<JobState> {
    const row = await readJob(this.deps.sql, id);
    if (!row || !viewer || (!viewer.admin && row.owner_id !== viewer.id)) throw notFound();
    return toJobState(row);
  }

  /** Cancels a job not yet finished (owner or admin; NOT_FOUND otherwise). A running handler's signal aborts. */
  async cancel(id: string, viewer: { id: string; admin: boolean } | null): Promise<JobState> {
    const state = await this.read(id, viewer);
    if (FINISHED_STATUSES.includes(state.status)) return state;
    const boss = await this.ready();
    await boss.cancel(queueOf(state.name), id);
    // Here at once; on another node at its next claim renewal (heartbeatRefreshSeconds).
    this.running.get(id)?.abort(new Error("job cancelled"));
    return this.read(id, viewer);
  }

  /** Runs a cron job now, outside its schedule (an operator's "run now"). */
  async runNow(name: string, owner: JobOwner | null, input?: unknown): Promise<string> {
    const cron = this.crons.find((c) => c.name === name);
    if (!cron && !this.definitions.has(name)) throw notFound(`no job named ${name}`);
    return this.enqueueNow(name, input ?? cron?.input ?? null, {}, owner);
  }

  schedules(): ScheduleInfo[] {
    return this.crons.map((cron) => {
      let next: string | null = null;
      try {
        const [date] = this.boss ? this.boss.previewSchedule(cron.expression, { tz: cron.timezone, count: 1 }) : [];
        next = date ? date.toISOString() : null;
      } catch {
        next = null;
      }
      return { name: cron.name, cron: cron.expression, timezone: cron.timezone, input: cron.input, nextRunAt: next };
    });
  }

  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    const boss = await this.ready();
    const jobs = await boss.findJobs<Envelope>(DEAD_LETTER_QUEUE, { queued: true, limit });
    return jobs.map((job) => ({
      id: job.id,
      jobId: job.sourceId,
      name: nameOf(job.sourceName ?? ""),
      error: (job.sourceOutput as { message?: string } | null)?.message ?? null,
      attempts: job.sourceRetryCount === null ? null : job.sourceRetryCount + 1,
      failedAt: job.createdOn instanceof Date ? job.createdOn.toISOString() : String(job.createdOn),
    }));
  }

  /**
   * Gives a dead-lettered job one more attempt under its own id (its state row follows it: status
   * `retrying`, then the usual lifecycle), and removes the dead letter.
   */
  async retryDeadLetter(deadLetterId: string): Promise<string> {
    const boss = await this.ready();
    const [letter] = await boss.findJobs<Envelope>(DEAD_LETTER_QUEUE, { id: deadLetterId });
    if (!letter?.sourceId || !letter.sourceName) throw notFound("dead letter not found");
    await this.deps.sql.transaction(async (tx) => {
      const db = bossDb(tx);
      await boss.retry(letter.sourceName!, letter.sourceId!, { db });
      await boss.deleteJob(DEAD_LETTER_QUEUE, deadLetterId, { db });
    });
    return letter.sourceId;
  }

  async queueDepths(): Promise<QueueDepth[]> {
    if (!this.started) return [];
    const queues = await this.boss!.getQueues([...this.definitions.keys()].map(queueOf));
    return queues.map((q) => ({ name: nameOf(q.name), queued: q.queuedCount, active: q.activeCount, deferred: q.deferredCount, failed: q.failedCount }));
  }

  stats() {
    return { ...this.counters, running: this.running.size, started: this.started };
  }

  /** Deletes finished state rows past retention (also run every `stateTrimIntervalMs`). */
  trim(): Promise<number> {
    return trimFinished(this.deps.sql, this.limits.stateRetentionSeconds);
  }

  /**
   * Graceful stop: claiming stops, running handlers get `shutdownTimeoutMs` to finish; the rest
   * are aborted and their jobs failed back to be retried (pg-boss's graceful stop).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.trimTimer) clearInterval(this.trimTimer);
    await this.starting?.catch(() => undefined);
    await this.boss?.stop({ graceful: true, timeout: this.limits.shutdownTimeoutMs, close: true });
  }

  private async ready(): Promise<PgBoss> {
    if (this.stopped) throw new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "job runtime stopped" });
    await this.start();
    return this.boss!;
  }

  private async syncSchedules(): Promise<void> {
    const boss = this.boss!;
    const wanted = new Map<string, CronEntry[]>();
    for (const cron of this.crons) wanted.set(cron.name, [...(wanted.get(cron.name) ?? []), cron]);
    for (const name of this.definitions.keys()) {
      const queue = queueOf(name);
      const keys = new Set<string>();
      for (const cron of wanted.get(name) ?? []) {
        const key = scheduleKey(cron);
        keys.add(key);
        const prepared = this.prepare(name, cron.input);
        const envelope: Envelope = { input: prepared.input, owner: null };
        await boss.schedule(queue, cron.expression, envelope as unknown as object, { ...this.sendOptions(name), tz: cron.timezone, key });
      }
      // A schedule the app no longer declares stops (ours only: the key says so).
      for (const schedule of await boss.getSchedules(queue)) {
        if (schedule.key.startsWith(SCHEDULE_KEY_PREFIX) && !keys.has(schedule.key)) await boss.unschedule(queue, schedule.key);
      }
    }
  }

  /** One attempt of one job: state row, progress, cancellation, the handler, its outcome. */
  private async runJob(name: string, definition: JobDefinition, job: JobWithMetadata<Envelope>): Promise<JobResult> {
    const { sql, log } = this.deps;
    const envelope = job.data ?? { input: null, owner: null };
    const attempt = job.retryCount + 1;
    const maxAttempts = job.retryLimit + 1;
    const owner = envelope.owner ? { id: envelope.owner } : null;
    const local = new AbortController();
    this.running.set(job.id, local);
    const signal = AbortSignal.any([job.signal, local.signal]);
    const started = performance.now();
    this.counters.started += 1;
    const progress = new ProgressCoalescer(
      async (value) => {
        await writeProgress(sql, job.id, attempt, value.progress, value.message);
        this.counters.progressWrites += 1;
      },
      {
        intervalMs: this.limits.progressIntervalMs,
        maxMessageLength: this.limits.maxProgressMessageLength,
        onError: (error) => log.warn({ job: job.id, err: errorMessage(error) }, "job progress not written"),
      },
    );
    let outcome: JobOutcome = "failed";
    try {
      // One round trip per job saved where the sync trigger already marked the start (the claim).
      if (!envelope.row) await markStarted(sql, { id: job.id, name, ownerId: owner?.id ?? null, attempt, maxAttempts });
      const output = await settleOrAbandon(
        Promise.resolve(definition.handler({
          ctx: { db: this.deps.db, user: owner, job: { id: job.id, name, attempt, maxAttempts }, jobs: this.client(owner), log },
          input: envelope.input,
          progress: progress.report,
          signal,
        })),
        signal,
        this.limits.abandonAfterAbortMs,
        () => log.warn({ job: job.id, name }, "job handler ignored its abort signal; abandoned it to free its worker slot"),
      );
      if (signal.aborted) throw signal.reason ?? new Error("job aborted");
      const value = output === undefined ? null : output;
      const bytes = Buffer.byteLength(JSON.stringify(value) ?? "null");
      if (bytes > this.limits.maxOutputBytes) throw new Error(`output is ${bytes} bytes, over maxOutputBytes ${this.limits.maxOutputBytes}`);
      // Unstorable output would make pg-boss's completion fail and the job hang until it expires.
      const unstorable = unstorableTextAt(value, "output");
      if (unstorable) throw new Error(`${unstorable} holds text the database cannot store (NUL or a lone surrogate)`);
      // The last progress lands before the completed state does.
      await progress.close();
      outcome = "completed";
      this.counters.completed += 1;
      return { id: job.id, status: "completed", output: { value } };
    } catch (error) {
      await progress.close();
      this.counters.failed += 1;
      log.warn({ job: job.id, name, attempt, err: errorMessage(error) }, "job attempt failed");
      return { id: job.id, status: "failed", output: { message: errorMessage(error).slice(0, 2000) } };
    } finally {
      this.running.delete(job.id);
      const seconds = (performance.now() - started) / 1000;
      for (const listener of this.finishedListeners) listener({ name, outcome, seconds });
    }
  }
}

function scheduleKey(cron: CronEntry): string {
  const hash = createHash("sha256").update(JSON.stringify([cron.expression, cron.timezone, cron.input ?? null])).digest("hex").slice(0, 16);
  return SCHEDULE_KEY_PREFIX + hash;
}

/**
 * The key as stored: per enqueuing user unless the job opts into one global key space, so one
 * user's key never hands another user's job id out. JSON keeps the parts unambiguous.
 */
function scopedKey(key: string, options: JobDefinitionOptions, owner: JobOwner | null): string {
  return options.keyScope === "global" ? JSON.stringify(["global", key]) : JSON.stringify(["owner", owner?.id ?? null, key]);
}

const isInt = (value: unknown, min: number, max: number): boolean => Number.isInteger(value) && (value as number) >= min && (value as number) <= max;

/** What is wrong with an enqueue's options (client input, often), or null. Bounds are documented on EnqueueOptions. */
function enqueueOptionsProblem(options: EnqueueOptions, limits: JobLimits): string | null {
  const { delay, runAt, priority, retries, key } = options;
  if (delay !== undefined && !(typeof delay === "number" && Number.isFinite(delay) && delay >= 0 && delay <= limits.maxDelayMs)) {
    return `delay must be a number of ms from 0 to ${limits.maxDelayMs}`;
  }
  if (runAt !== undefined) {
    if (!(runAt instanceof Date) || !Number.isFinite(runAt.getTime())) return "runAt must be a valid Date";
    if (runAt.getTime() > Date.now() + limits.maxDelayMs) return `runAt must be at most ${limits.maxDelayMs} ms ahead`;
  }
  if (priority !== undefined && !isInt(priority, -INT32_MAX, INT32_MAX)) return `priority must be an integer from ${-INT32_MAX} to ${INT32_MAX}`;
  if (retries !== undefined && !isInt(retries, 0, limits.maxRetries)) return `retries must be an integer from 0 to ${limits.maxRetries}`;
  if (key !== undefined) {
    if (typeof key !== "string" || key.length === 0 || key.length > 255) return "key must be 1–255 characters";
    if (unstorableTextAt(key, "key")) return "key holds text the database cannot store (NUL or a lone surrogate)";
  }
  return null;
}

/** What pg-boss would refuse (at every send) in a job's options, or null: checked when it is defined. */
function definitionProblem(options: JobDefinitionOptions, limits: JobLimits): string | null {
  const { retries, retryDelaySeconds, retryDelayMaxSeconds, timeoutSeconds, heartbeatSeconds, concurrency, batchSize, priority, keyScope } = options;
  if (retries !== undefined && !isInt(retries, 0, limits.maxRetries)) return `retries must be an integer from 0 to ${limits.maxRetries}`;
  if (retryDelaySeconds !== undefined && !isInt(retryDelaySeconds, 0, INT32_MAX)) return "retryDelaySeconds must be a whole number of seconds >= 0";
  if (retryDelayMaxSeconds !== undefined && !isInt(retryDelayMaxSeconds, 0, INT32_MAX)) return "retryDelayMaxSeconds must be a whole number of seconds >= 0";
  if (timeoutSeconds !== undefined && !isInt(timeoutSeconds, 1, MAX_TIMEOUT_SECONDS)) return `timeoutSeconds must be a whole number from 1 to ${MAX_TIMEOUT_SECONDS}`;
  if (heartbeatSeconds !== undefined && !isInt(heartbeatSeconds, 10, INT32_MAX)) return "heartbeatSeconds must be a whole number >= 10 (pg-boss's floor)";
  if (concurrency !== undefined && !isInt(concurrency, 1, 10_000)) return "concurrency must be an integer >= 1";
  if (batchSize !== undefined && !isInt(batchSize, 1, concurrency ?? limits.concurrency)) return "batchSize must be an integer from 1 to the job's concurrency";
  if (priority !== undefined && !isInt(priority, -INT32_MAX, INT32_MAX)) return "priority must be a 32-bit integer";
  if (keyScope !== undefined && keyScope !== "owner" && keyScope !== "global") return 'keyScope must be "owner" or "global"';
  return null;
}
