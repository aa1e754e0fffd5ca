import { randomUUID } from "node:crypto";
import type { Logger } from "../log/index.ts";
import type { SqlClient, SqlConnection } from "../store/index.ts";
import { installCaptureTriggers } from "./captureTriggers.ts";
import { readMigrationFiles, type MigrationFile } from "./migrationFiles.ts";
import { PRISMA_MIGRATIONS_SQL, TETHER_SCHEMA_SQL } from "./tetherSchema.ts";

/** Key of the transaction-scoped advisory lock every migrating process takes (two runs serialize). */
export const MIGRATE_LOCK_KEY = 7_464_865_172; // "tether" on a phone keypad, roughly

export interface MigrateOptions {
  sql: SqlClient;
  /** Folder of Prisma migrations (default `prisma/migrations`). */
  migrationsDir?: string;
  log?: Logger;
  /** Called before each pending migration is applied (for progress output). */
  onProgress?: (event: MigrateProgress) => void;
}

export interface MigrateProgress {
  migration: string;
  index: number;
  total: number;
}

export interface MigrateResult {
  /** Migrations applied by this run, in order. */
  applied: string[];
  /** Migrations that were already applied. */
  alreadyApplied: string[];
  /** Tables whose change capture is installed. */
  capturedTables: string[];
}

export class MigrationError extends Error {
  override readonly name = "MigrationError";
  constructor(
    readonly migration: string,
    override readonly cause: unknown,
  ) {
    super(`migration ${migration} failed and was rolled back: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

/**
 * Applies pending Prisma migrations, one transaction each, records them in `_prisma_migrations`
 * with Prisma's checksum, and (re)installs Tether's tables and change-capture triggers.
 * Idempotent. Two processes running it at once serialize on an advisory lock and each migration
 * is applied once. A failing migration rolls back entirely (its SQL, its record, its triggers)
 * and raises MigrationError; migrations before it stay applied.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const { sql, log } = options;
  const files = await readMigrationFiles(options.migrationsDir ?? "prisma/migrations");

  const applied = await sql.transaction(async (tx) => {
    await lock(tx);
    await tx.exec(PRISMA_MIGRATIONS_SQL);
    await tx.exec(TETHER_SCHEMA_SQL);
    return tx.query<AppliedRow>(
      `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"`,
    );
  });
  checkHistory(applied, files, log);

  const done = new Set(applied.filter((r) => r.finished_at && !r.rolled_back_at).map((r) => r.migration_name));
  const pending = files.filter((f) => !done.has(f.name));
  const result: MigrateResult = { applied: [], alreadyApplied: files.filter((f) => done.has(f.name)).map((f) => f.name), capturedTables: [] };

  for (const [index, file] of pending.entries()) {
    options.onProgress?.({ migration: file.name, index, total: pending.length });
    const appliedNow = await applyOne(sql, file);
    if (appliedNow) {
      result.applied.push(file.name);
      log?.info({ migration: file.name }, "migration applied");
    } else {
      result.alreadyApplied.push(file.name); // another process got there first
    }
  }

  // Also on a run with nothing pending: triggers may be missing (a table made by hand).
  result.capturedTables = await sql.transaction(async (tx) => {
    await lock(tx);
    return installCaptureTriggers(tx);
  });
  return result;
}

async function lock(tx: SqlConnection): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATE_LOCK_KEY]);
}

/** One migration in one transaction, together with its record and its tables' triggers. */
async function applyOne(sql: SqlClient, file: MigrationFile): Promise<boolean> {
  try {
    return await sql.transaction(async (tx) => {
      await lock(tx);
      const rows = await tx.query(
        `SELECT 1 FROM "_prisma_migrations" WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL`,
        [file.name],
      );
      if (rows.length > 0) return false;
      const startedAt = new Date();
      await tx.exec(file.sql);
      await installCaptureTriggers(tx);
      await tx.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, now(), $3, NULL, NULL, $4, 1)`,
        [randomUUID(), file.checksum, file.name, startedAt],
      );
      return true;
    });
  } catch (error) {
    throw new MigrationError(file.name, error);
  }
}

/** Refuses a history Prisma would refuse; warns where Prisma warns. */
function checkHistory(applied: AppliedRow[], files: MigrationFile[], log: Logger | undefined): void {
  const failed = applied.filter((r) => !r.finished_at && !r.rolled_back_at);
  if (failed.length > 0) {
    throw new Error(
      `migration ${failed.map((r) => r.migration_name).join(", ")} is recorded as failed in _prisma_migrations; ` +
        "fix the database, then mark it rolled back (`prisma migrate resolve --rolled-back <name>`)",
    );
  }
  const byName = new Map(files.map((f) => [f.name, f]));
  for (const row of applied) {
    if (!row.finished_at || row.rolled_back_at) continue;
    const file = byName.get(row.migration_name);
    if (!file) log?.warn({ migration: row.migration_name }, "applied migration is missing from the migrations folder");
    else if (file.checksum !== row.checksum) {
      log?.warn({ migration: row.migration_name }, "applied migration was modified after it was applied");
    }
  }
}
