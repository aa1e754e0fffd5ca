/**
 * Tether's own tables and the change-capture trigger function. Every statement is idempotent:
 * `tether migrate` runs this script on every start.
 */

/** Channel the capture trigger notifies on commit (a wake-up hint; the table is the truth). */
export const CHANGES_CHANNEL = "tether_changes";

/** A row's JSON above this size has its large values left out of the change log. */
export const OVERSIZED_ROW_BYTES = 64 * 1024;
/** Within an oversized row, values above this size are left out (and listed in `omitted`). */
export const OVERSIZED_VALUE_BYTES = 8 * 1024;

export const TETHER_SCHEMA_SQL = /* sql */ `
CREATE TABLE IF NOT EXISTS "_tether_changes" (
  "seq"     bigserial PRIMARY KEY,
  -- The writing transaction: the feed's cursor is a snapshot horizon over these (see feed/).
  "xid"     xid8 NOT NULL DEFAULT pg_current_xact_id(),
  "tbl"     text NOT NULL,
  "op"      text NOT NULL,
  "pk"      jsonb,
  "old"     jsonb,
  "new"     jsonb,
  -- Columns left out of old/new (bytea, oversized values): a reader must treat them as unknown.
  "omitted" text[],
  "at"      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS "_tether_changes_xid_idx" ON "_tether_changes" ("xid");
CREATE INDEX IF NOT EXISTS "_tether_changes_at_idx" ON "_tether_changes" ("at");

-- Feed bookkeeping: 'trim_horizon' = every change of a transaction below this xid may be gone.
CREATE TABLE IF NOT EXISTS "_tether_meta" (
  "key"   text PRIMARY KEY,
  "value" text NOT NULL
);

-- One generic row trigger for every model table.
-- TG_ARGV[0]: primary-key columns, comma separated; TG_ARGV[1]: columns never logged (bytea).
-- It runs once per written row inside the writer's transaction, so every statement here is on
-- the insert path: keep it lean (see docs/performance.md for its measured cost).
CREATE OR REPLACE FUNCTION "_tether_capture"() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  old_row jsonb;
  new_row jsonb;
  key_row jsonb;
  omitted text[];
  big text[];
BEGIN
  IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
  IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
  IF strpos(TG_ARGV[0], ',') = 0 THEN
    key_row := jsonb_build_object(TG_ARGV[0], coalesce(new_row, old_row) -> TG_ARGV[0]);
  ELSE
    SELECT jsonb_object_agg(c, coalesce(new_row, old_row) -> c)
      INTO key_row FROM unnest(string_to_array(TG_ARGV[0], ',')) AS c;
  END IF;
  IF TG_ARGV[1] <> '' THEN
    omitted := string_to_array(TG_ARGV[1], ',');
    old_row := old_row - omitted;
    new_row := new_row - omitted;
  END IF;
  -- Keys and filterable columns are what readers need; huge values would bloat the log.
  -- pg_column_size (the jsonb's stored size) is a cheap stand-in for its text length.
  IF coalesce(pg_column_size(old_row), 0) + coalesce(pg_column_size(new_row), 0) > ${OVERSIZED_ROW_BYTES} THEN
    SELECT coalesce(array_agg(DISTINCT e.key), '{}') INTO big
      FROM (SELECT * FROM jsonb_each(coalesce(old_row, '{}')) UNION ALL SELECT * FROM jsonb_each(coalesce(new_row, '{}'))) e
      WHERE octet_length(e.value::text) > ${OVERSIZED_VALUE_BYTES};
    IF big <> '{}' THEN
      old_row := old_row - big;
      new_row := new_row - big;
      omitted := coalesce(omitted, '{}') || big;
    END IF;
  END IF;
  INSERT INTO "_tether_changes" ("tbl", "op", "pk", "old", "new", "omitted")
    VALUES (TG_TABLE_NAME, TG_OP, key_row, old_row, new_row, omitted);
  RETURN NULL;
END
$fn$;

-- Wakes listeners once per statement (a statement-level trigger beside the row trigger): the
-- notification carries nothing, Postgres delivers it at commit and drops it on rollback.
CREATE OR REPLACE FUNCTION "_tether_notify"() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify('${CHANGES_CHANNEL}', '');
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION "_tether_capture_truncate"() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO "_tether_changes" ("tbl", "op") VALUES (TG_TABLE_NAME, 'TRUNCATE');
  PERFORM pg_notify('${CHANGES_CHANNEL}', '');
  RETURN NULL;
END
$fn$;

-- CRDT documents (see crdt/ and docs/crdt.md): one row per (model, row, field) holding the
-- compacted Loro snapshot, plus an append-only log of the updates since, compacted into the
-- snapshot every N updates / bytes. Only the log is captured: its INSERTs tell every node which
-- document changed (bytea is left out of the change log, so readers fetch the update by id).
CREATE TABLE IF NOT EXISTS "_tether_crdt_docs" (
  "model"           text NOT NULL,
  "row_id"          text NOT NULL,
  "field"           text NOT NULL,
  "snapshot"        bytea NOT NULL,
  -- Loro oplog version vector (VersionVector.encode()) of snapshot + logged updates.
  "version"         bytea NOT NULL,
  "pending_updates" integer NOT NULL DEFAULT 0,
  "pending_bytes"   bigint NOT NULL DEFAULT 0,
  "updated_at"      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("model", "row_id", "field")
);
-- The column is projected from the document debounced (crdt/projector.ts): md5 of what was last
-- written into it (a different md5 there means someone else wrote it), and the version projected
-- (behind "version": a projection is due, also after a crash).
ALTER TABLE "_tether_crdt_docs" ADD COLUMN IF NOT EXISTS "projected" text;
ALTER TABLE "_tether_crdt_docs" ADD COLUMN IF NOT EXISTS "projected_version" bytea;
CREATE TABLE IF NOT EXISTS "_tether_crdt_updates" (
  "id"     bigserial PRIMARY KEY,
  "model"  text NOT NULL,
  "row_id" text NOT NULL,
  "field"  text NOT NULL,
  "data"   bytea NOT NULL,
  "at"     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "_tether_crdt_updates_doc_idx" ON "_tether_crdt_updates" ("model", "row_id", "field", "id");
CREATE OR REPLACE TRIGGER "_tether_capture" AFTER INSERT ON "_tether_crdt_updates"
  FOR EACH ROW EXECUTE FUNCTION "_tether_capture"('id', 'data');
CREATE OR REPLACE TRIGGER "_tether_notify" AFTER INSERT ON "_tether_crdt_updates"
  FOR EACH STATEMENT EXECUTE FUNCTION "_tether_notify"();

-- Background jobs (see jobs/ and docs/jobs.md): the state users watch, one row per job, written
-- by enqueue (same transaction), by progress() and by pg-boss's own state changes (a trigger on
-- its job table, installed when the job runtime starts). Captured like a model table, so
-- \`$jobs.get\` is an ordinary live query. Exists in every app; pg-boss's schema only in apps with jobs.
CREATE TABLE IF NOT EXISTS "_tether_jobs" (
  "id"          text PRIMARY KEY,
  "name"        text NOT NULL,
  -- The enqueuing user (null: the system, a cron tick): who may read and cancel it.
  "owner_id"    text,
  -- Idempotency key of the enqueue (unique per name among jobs not finished).
  "key"         text,
  -- queued | active | retrying | completed | failed | cancelled
  "status"      text NOT NULL DEFAULT 'queued',
  "attempts"    integer NOT NULL DEFAULT 0,
  "max_attempts" integer NOT NULL DEFAULT 1,
  "progress"    integer NOT NULL DEFAULT 0,
  "message"     text,
  "output"      jsonb,
  "error"       text,
  "run_at"      timestamptz NOT NULL DEFAULT now(),
  "created_at"  timestamptz NOT NULL DEFAULT now(),
  "started_at"  timestamptz,
  "finished_at" timestamptz,
  "updated_at"  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "_tether_jobs_finished_idx" ON "_tether_jobs" ("finished_at");
CREATE UNIQUE INDEX IF NOT EXISTS "_tether_jobs_key_idx" ON "_tether_jobs" ("name", "key")
  WHERE "key" IS NOT NULL AND "status" IN ('queued', 'active', 'retrying');
CREATE OR REPLACE TRIGGER "_tether_capture" AFTER INSERT OR UPDATE OR DELETE ON "_tether_jobs"
  FOR EACH ROW EXECUTE FUNCTION "_tether_capture"('id', '');
CREATE OR REPLACE TRIGGER "_tether_notify" AFTER INSERT OR UPDATE OR DELETE ON "_tether_jobs"
  FOR EACH STATEMENT EXECUTE FUNCTION "_tether_notify"();

-- pg-boss's state changes, mirrored into _tether_jobs in the same transaction (installed on its
-- job table by jobs/ after pg-boss created it). Covers what no handler sees: a claim, a retry
-- after an expired heartbeat, a cancel, a retry of a dead letter. Heartbeats (heartbeat_on only)
-- and deletes (retention; a retry can be a DELETE + INSERT of the same id) change nothing here.
CREATE OR REPLACE FUNCTION "_tether_job_sync"() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  st text := NEW.state::text;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.state IS NOT DISTINCT FROM OLD.state AND NEW.retry_count IS NOT DISTINCT FROM OLD.retry_count THEN
    RETURN NULL;
  END IF;
  UPDATE "_tether_jobs" SET
    "status" = CASE st WHEN 'created' THEN 'queued' WHEN 'retry' THEN 'retrying' ELSE st END,
    "attempts" = CASE WHEN st = 'active' THEN NEW.retry_count + 1 ELSE "attempts" END,
    "progress" = CASE WHEN st = 'active' THEN 0 WHEN st = 'completed' THEN 100 ELSE "progress" END,
    "message" = CASE WHEN st = 'active' THEN NULL ELSE "message" END,
    "max_attempts" = NEW.retry_limit + 1,
    -- Tether completes a job with { value: <the handler's return value> }.
    "output" = CASE WHEN st = 'completed' THEN NEW.output -> 'value' WHEN st = 'active' THEN NULL ELSE "output" END,
    -- pg-boss keeps a thrown error in output ({ message, stack, ... }): only its message is shown.
    "error" = CASE WHEN st IN ('failed', 'retry') THEN left(coalesce(NEW.output ->> 'message', NEW.output #>> '{}'), 2000)
                   WHEN st IN ('active', 'completed', 'created') THEN NULL ELSE "error" END,
    "run_at" = CASE WHEN st IN ('created', 'retry') THEN NEW.start_after ELSE "run_at" END,
    "started_at" = CASE WHEN st = 'active' THEN coalesce(NEW.started_on, now()) ELSE "started_at" END,
    "finished_at" = CASE WHEN st IN ('completed', 'failed', 'cancelled') THEN coalesce(NEW.completed_on, now()) ELSE NULL END,
    "updated_at" = now()
  WHERE "id" = NEW.id::text;
  RETURN NULL;
END
$fn$;

-- Deleting a model row deletes its documents (installed per CRDT model by crdt/, so cascades
-- and raw SQL deletes leave no orphan). TG_ARGV: model name, primary-key column.
CREATE OR REPLACE FUNCTION "_tether_crdt_row_deleted"() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  rid text := to_jsonb(OLD) ->> TG_ARGV[1];
BEGIN
  DELETE FROM "_tether_crdt_docs" WHERE "model" = TG_ARGV[0] AND "row_id" = rid;
  DELETE FROM "_tether_crdt_updates" WHERE "model" = TG_ARGV[0] AND "row_id" = rid;
  RETURN NULL;
END
$fn$;
CREATE OR REPLACE FUNCTION "_tether_crdt_truncated"() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM "_tether_crdt_docs" WHERE "model" = TG_ARGV[0];
  DELETE FROM "_tether_crdt_updates" WHERE "model" = TG_ARGV[0];
  RETURN NULL;
END
$fn$;

-- Durable workflows (see workflows/ and docs/workflows.md): one row per run and one per step it
-- reached, both captured like model tables so \`$workflows.get\` is an ordinary live query.
-- Each resume of a run is a pg-boss job of the jobs runtime; "runner" is the resume job running
-- it now (one at a time), "wake" a wake-up that arrived while it ran (the runner replays again).
CREATE TABLE IF NOT EXISTS "_tether_workflows" (
  "id"           text PRIMARY KEY,
  "name"         text NOT NULL,
  -- The starting user (null: the system): who may read and cancel it.
  "owner_id"     text,
  -- pending | running | waiting | completed | failed | cancelled
  "status"       text NOT NULL DEFAULT 'pending',
  "input"        jsonb,
  "output"       jsonb,
  "error"        text,
  "current_step" text,
  "step_count"   integer NOT NULL DEFAULT 0,
  "runner"       text,
  "wake"         boolean NOT NULL DEFAULT false,
  "created_at"   timestamptz NOT NULL DEFAULT now(),
  "started_at"   timestamptz,
  "updated_at"   timestamptz NOT NULL DEFAULT now(),
  "finished_at"  timestamptz
);
CREATE INDEX IF NOT EXISTS "_tether_workflows_finished_idx" ON "_tether_workflows" ("finished_at");
CREATE OR REPLACE TRIGGER "_tether_capture" AFTER INSERT OR UPDATE OR DELETE ON "_tether_workflows"
  FOR EACH ROW EXECUTE FUNCTION "_tether_capture"('id', '');
CREATE OR REPLACE TRIGGER "_tether_notify" AFTER INSERT OR UPDATE OR DELETE ON "_tether_workflows"
  FOR EACH STATEMENT EXECUTE FUNCTION "_tether_notify"();

-- A step as it was reached: its position, name and kind are what replay checks; a completed
-- step's result is returned on replay instead of running it again.
CREATE TABLE IF NOT EXISTS "_tether_workflow_steps" (
  -- workflow_id || ':' || idx
  "id"          text PRIMARY KEY,
  "workflow_id" text NOT NULL,
  "idx"         integer NOT NULL,
  "name"        text NOT NULL,
  -- run | sleep | event
  "kind"        text NOT NULL,
  -- running | waiting | completed | failed
  "status"      text NOT NULL,
  "result"      jsonb,
  "error"       text,
  "attempts"    integer NOT NULL DEFAULT 0,
  -- sleep: the wake-up time; event: the timeout (null: wait for ever). Fixed when first reached.
  "wake_at"     timestamptz,
  -- The timer job of this step ran: due, whatever the clocks say.
  "fired"       boolean NOT NULL DEFAULT false,
  "started_at"  timestamptz,
  "finished_at" timestamptz,
  "updated_at"  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS "_tether_workflow_steps_idx" ON "_tether_workflow_steps" ("workflow_id", "idx");
CREATE OR REPLACE TRIGGER "_tether_capture" AFTER INSERT OR UPDATE OR DELETE ON "_tether_workflow_steps"
  FOR EACH ROW EXECUTE FUNCTION "_tether_capture"('id', '');
CREATE OR REPLACE TRIGGER "_tether_notify" AFTER INSERT OR UPDATE OR DELETE ON "_tether_workflow_steps"
  FOR EACH STATEMENT EXECUTE FUNCTION "_tether_notify"();

-- Events sent to a run (sendEvent): kept until a waitForEvent of that name consumes one (the
-- consuming step's index), so an event sent before the wait is not lost.
CREATE TABLE IF NOT EXISTS "_tether_workflow_events" (
  "id"          bigserial PRIMARY KEY,
  "workflow_id" text NOT NULL,
  "name"        text NOT NULL,
  "payload"     jsonb,
  "step_idx"    integer,
  "created_at"  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "_tether_workflow_events_open_idx" ON "_tether_workflow_events" ("workflow_id", "name", "id")
  WHERE "step_idx" IS NULL;
`;

/** Prisma's migrations table, exactly as Prisma creates it, so Prisma's tooling agrees with ours. */
export const PRISMA_MIGRATIONS_SQL = /* sql */ `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum"            VARCHAR(64) NOT NULL,
  "finished_at"         TIMESTAMPTZ,
  "migration_name"      VARCHAR(255) NOT NULL,
  "logs"                TEXT,
  "rolled_back_at"      TIMESTAMPTZ,
  "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);
`;
