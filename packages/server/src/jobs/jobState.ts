import type { JobState, JobStatus } from "@tether/protocol";
import pg from "pg";
import type { ModelMeta, SchemaMeta } from "../schema/index.ts";
import type { SqlConnection } from "../store/index.ts";

/** Tether's table of job state (see migrate/tetherSchema.ts): what `$jobs.get` reads live. */
export const JOBS_TABLE = "_tether_jobs";

// What `$jobs.get` answers is wire protocol (@tether/protocol).
export type { JobState, JobStatus } from "@tether/protocol";

export const FINISHED_STATUSES: readonly JobStatus[] = ["completed", "failed", "cancelled"];

export interface JobRow {
  id: string;
  name: string;
  owner_id: string | null;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  progress: number;
  message: string | null;
  output: unknown;
  error: string | null;
  run_at: Date | string;
  created_at: Date | string;
  started_at: Date | string | null;
  finished_at: Date | string | null;
}

const iso = (value: Date | string): string => (value instanceof Date ? value.toISOString() : new Date(value).toISOString());

export function toJobState<Output>(row: JobRow): JobState<Output> {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    progress: row.progress,
    message: row.message,
    output: (row.output ?? null) as Output | null,
    error: row.error,
    runAt: iso(row.run_at),
    createdAt: iso(row.created_at),
    startedAt: row.started_at ? iso(row.started_at) : null,
    finishedAt: row.finished_at ? iso(row.finished_at) : null,
  };
}

const COLUMNS = `"id", "name", "owner_id", "status", "attempts", "max_attempts", "progress", "message", "output", "error", "run_at", "created_at", "started_at", "finished_at"`;

export async function readJob(sql: Pick<SqlConnection, "query">, id: string): Promise<JobRow | null> {
  const rows = await sql.query<JobRow>(`SELECT ${COLUMNS} FROM "${JOBS_TABLE}" WHERE "id" = $1`, [id]);
  return rows[0] ?? null;
}

export interface NewJobRow {
  id: string;
  name: string;
  ownerId: string | null;
  key: string | null;
  maxAttempts: number;
  runAt: Date;
}

/**
 * Inserts a job's state row in the caller's transaction. With a key, a job of the same name and key
 * that is not finished wins: its id is returned and nothing is inserted (the unique index makes
 * this hold across concurrent transactions).
 */
export async function insertJobRow(sql: Pick<SqlConnection, "query">, row: NewJobRow): Promise<{ id: string; inserted: boolean }> {
  const inserted = await sql.query<{ id: string }>(
    `INSERT INTO "${JOBS_TABLE}" ("id", "name", "owner_id", "key", "max_attempts", "run_at")
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT ("name", "key") WHERE "key" IS NOT NULL AND "status" IN ('queued', 'active', 'retrying') DO NOTHING
     RETURNING "id"`,
    [row.id, row.name, row.ownerId, row.key, row.maxAttempts, row.runAt.toISOString()],
  );
  if (inserted[0]) return { id: inserted[0].id, inserted: true };
  const existing = await sql.query<{ id: string }>(
    `SELECT "id" FROM "${JOBS_TABLE}" WHERE "name" = $1 AND "key" = $2 AND "status" IN ('queued', 'active', 'retrying') LIMIT 1`,
    [row.name, row.key],
  );
  if (!existing[0]) throw new Error(`job ${row.name} with key ${row.key}: conflicting row vanished`);
  return { id: existing[0].id, inserted: false };
}

/**
 * A run started: for jobs enqueued through Tether the sync trigger already did this; a cron tick's
 * job (sent by pg-boss's scheduler) gets its row here. Finished rows are left alone.
 */
export async function markStarted(
  sql: Pick<SqlConnection, "query">,
  job: { id: string; name: string; ownerId: string | null; attempt: number; maxAttempts: number },
): Promise<void> {
  await sql.query(
    `INSERT INTO "${JOBS_TABLE}" ("id", "name", "owner_id", "status", "attempts", "max_attempts", "started_at")
     VALUES ($1, $2, $3, 'active', $4, $5, now())
     ON CONFLICT ("id") DO UPDATE SET "status" = 'active', "attempts" = EXCLUDED."attempts", "updated_at" = now(),
       "started_at" = coalesce("${JOBS_TABLE}"."started_at", now())
     WHERE "${JOBS_TABLE}"."status" NOT IN ('completed', 'failed', 'cancelled')
       AND ("${JOBS_TABLE}"."status" <> 'active' OR "${JOBS_TABLE}"."attempts" <> EXCLUDED."attempts")`,
    [job.id, job.name, job.ownerId, job.attempt, job.maxAttempts],
  );
}

/** A progress report of one attempt: ignored once the job moved on (finished, or a later attempt). */
export async function writeProgress(
  sql: Pick<SqlConnection, "query">,
  id: string,
  attempt: number,
  progress: number,
  message: string | null,
): Promise<void> {
  await sql.query(
    `UPDATE "${JOBS_TABLE}" SET "progress" = $3, "message" = $4, "updated_at" = now()
     WHERE "id" = $1 AND "attempts" = $2 AND "status" = 'active'
       AND ("progress" IS DISTINCT FROM $3 OR "message" IS DISTINCT FROM $4)`,
    [id, attempt, progress, message],
  );
}

/** Deletes finished state rows older than the retention (never an unfinished one). */
export async function trimFinished(sql: Pick<SqlConnection, "query">, retentionSeconds: number): Promise<number> {
  const rows = await sql.query<{ n: number }>(
    `WITH gone AS (DELETE FROM "${JOBS_TABLE}" WHERE "finished_at" < now() - make_interval(secs => $1) RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [retentionSeconds],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Mirrors pg-boss's state changes into `_tether_jobs` (function `_tether_job_sync`, installed by
 * `tether migrate`). pg-boss's job table is partitioned by queue: a row trigger on the parent is
 * cloned onto every partition, also ones made later.
 */
export function syncTriggerSql(schema: string): string {
  const table = `${pg.escapeIdentifier(schema)}."job"`;
  return `CREATE OR REPLACE TRIGGER "_tether_job_sync" AFTER INSERT OR UPDATE ON ${table}
    FOR EACH ROW EXECUTE FUNCTION "_tether_job_sync"()`;
}

const column = (name: string, type = "String", isId = false) => ({
  name,
  column: name,
  kind: "scalar" as const,
  type,
  isList: false,
  isRequired: true,
  isId,
});

/**
 * `_tether_jobs` as a model, for the reactor only: `$jobs.get` records a read `where: { id }` on
 * it, so a change to one job's row re-runs only that job's live queries (the group index files
 * them by id) instead of every job subscription.
 */
export const JOBS_MODEL: ModelMeta = {
  name: JOBS_TABLE,
  table: JOBS_TABLE,
  primaryKey: ["id"],
  fields: {
    id: column("id", "String", true),
    name: column("name"),
    owner_id: column("owner_id"),
    status: column("status"),
  },
};

/** The app's schema plus the jobs table, for the reactor. */
export function withJobsModel(schema: SchemaMeta): SchemaMeta {
  if (schema.models[JOBS_TABLE]) return schema;
  return { ...schema, models: { ...schema.models, [JOBS_TABLE]: JOBS_MODEL } };
}
