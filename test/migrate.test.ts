import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger, migrate, MigrationError, type SqlClient } from "@tether/server";
import { openDatabase } from "@tether/server/internal";
import { createTestDatabase, engines, type TestDatabase } from "./support/databases.ts";

const INIT = "20261125000000_init";
const AUTH = "20261126000000_auth";
const MEMBERS_NOTES = "20261127000000_members_notes";
/** Every migration in prisma/migrations, in order (listed by hand: a new one must be seen here). */
const INBOX_EXPORTS = "20261202000000_inbox_exports";
const READINGS = "20261202100000_readings";
const ALL = [INIT, AUTH, MEMBERS_NOTES, INBOX_EXPORTS, READINGS];

/** Everything migrate could change: tables, columns, indexes, triggers, functions, migration rows. */
async function describeDatabase(sql: SqlClient): Promise<unknown> {
  const [row] = await sql.query<{ d: unknown }>(/* sql */ `
    SELECT json_build_object(
      'columns', (SELECT json_agg(json_build_object('t', table_name, 'c', column_name, 'type', data_type, 'default', column_default) ORDER BY table_name, column_name)
                    FROM information_schema.columns WHERE table_schema = current_schema()),
      'indexes', (SELECT json_agg(indexdef ORDER BY indexname) FROM pg_indexes WHERE schemaname = current_schema()),
      'triggers', (SELECT json_agg(pg_get_triggerdef(t.oid) ORDER BY t.tgname, t.tgrelid::regclass::text)
                    FROM pg_trigger t WHERE NOT t.tgisinternal),
      'functions', (SELECT json_agg(pg_get_functiondef(p.oid) ORDER BY p.proname)
                    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()),
      'migrations', (SELECT json_agg(json_build_object('name', migration_name, 'checksum', checksum, 'finished', finished_at) ORDER BY migration_name)
                    FROM "_prisma_migrations")
    ) AS d`);
  return row?.d;
}

function tempMigrations(extra: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-migrations-"));
  fs.cpSync(path.join("prisma", "migrations", INIT), path.join(dir, INIT), { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, "migration.sql"), sql);
  }
  return dir;
}

const BROKEN = `CREATE TABLE "Extra" ("id" TEXT PRIMARY KEY);
INSERT INTO "Extra" VALUES ('half-done');
ALTER TABLE "Task" ADD COLUMN "priority" INTEGER;
SELECT this_function_does_not_exist();
`;

describe.each(engines)("tether migrate on %s", (engine) => {
  let database: TestDatabase | undefined;
  const open: SqlClient[] = [];
  const log = createLogger("test");

  async function connect(db: TestDatabase): Promise<SqlClient> {
    const { sql } = await openDatabase({ url: db.url, dataDir: db.dataDir }, log);
    open.push(sql);
    return sql;
  }

  afterEach(async () => {
    for (const sql of open.splice(0)) await sql.close();
    await database?.drop();
    database = undefined;
  });

  it("applies migrations, records them as Prisma does, and installs capture on every model table", async () => {
    database = await createTestDatabase(engine);
    const sql = await connect(database);
    const result = await migrate({ sql, migrationsDir: "prisma/migrations" });
    expect(result.applied).toEqual(ALL);
    expect(result.capturedTables).toEqual(["Account", "Attachment", "Message", "Note", "Project", "ProjectExport", "ProjectMember", "Reading", "Session", "Task", "User", "Verification"]);
    const [row] = await sql.query<{ checksum: string; applied_steps_count: number; finished_at: unknown }>(
      `SELECT checksum, applied_steps_count, finished_at FROM "_prisma_migrations" WHERE migration_name = $1`,
      [INIT],
    );
    const file = fs.readFileSync(path.join("prisma", "migrations", INIT, "migration.sql"));
    expect(row?.checksum).toBe(createHash("sha256").update(file).digest("hex"));
    expect(row?.applied_steps_count).toBe(1);
    expect(row?.finished_at).toBeTruthy();
  });

  it("changes nothing when run a second time", async () => {
    database = await createTestDatabase(engine);
    const sql = await connect(database);
    await migrate({ sql, migrationsDir: "prisma/migrations" });
    const before = await describeDatabase(sql);
    const again = await migrate({ sql, migrationsDir: "prisma/migrations" });
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toEqual(ALL);
    expect(await describeDatabase(sql)).toEqual(before);
  });

  it("rolls a failing migration back entirely and leaves the database as it was", async () => {
    database = await createTestDatabase(engine);
    const sql = await connect(database);
    await migrate({ sql, migrationsDir: "prisma/migrations" });
    const before = await describeDatabase(sql);
    const dir = tempMigrations({ "20261126000000_broken": BROKEN });
    const failure = await migrate({ sql, migrationsDir: dir }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as MigrationError).migration).toBe("20261126000000_broken");
    expect((failure as Error).message).toMatch(/this_function_does_not_exist/);
    expect(await describeDatabase(sql)).toEqual(before);
  });

  it("captures tables added by a later migration", async () => {
    database = await createTestDatabase(engine);
    const sql = await connect(database);
    const dir = tempMigrations({ "20261126000000_notes": `CREATE TABLE "Note" ("id" TEXT PRIMARY KEY, "body" TEXT NOT NULL);` });
    const result = await migrate({ sql, migrationsDir: dir });
    expect(result.applied).toEqual([INIT, "20261126000000_notes"]);
    expect(result.capturedTables).toContain("Note");
    await sql.query(`INSERT INTO "Note" VALUES ('n1', 'hello')`);
    const rows = await sql.query<{ tbl: string; pk: unknown }>(`SELECT tbl, pk FROM "_tether_changes"`);
    expect(rows).toEqual([{ tbl: "Note", pk: { id: "n1" } }]);
  });

  it("CLI: exits 0 and reports progress; exits non-zero with a clear message on a broken migration", () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-cli-"));
    const target = engine === "postgres" ? ["--url", "__URL__"] : ["--data-dir", dataDir];
    return (async () => {
      database = await createTestDatabase(engine);
      const args = target.map((a) => (a === "__URL__" ? database!.url! : a));
      const run = (migrations: string) =>
        spawnSync(process.execPath, ["packages/server/bin/tether.mjs", "migrate", ...args, "--migrations", migrations], {
          encoding: "utf8",
          env: { ...process.env, TETHER_LOG_LEVEL: "silent" },
        });
      const ok = run("prisma/migrations");
      expect(ok.stderr).toBe("");
      expect(ok.status).toBe(0);
      expect(ok.stdout).toContain(`applying ${INIT} (1/${ALL.length})`);
      expect(ok.stdout).toContain(`applying ${AUTH} (2/${ALL.length})`);
      expect(ok.stdout).toContain(`applying ${MEMBERS_NOTES} (3/${ALL.length})`);
      const broken = run(tempMigrations({ "20261126000000_broken": BROKEN }));
      expect(broken.status).toBe(1);
      expect(broken.stderr).toContain("migration 20261126000000_broken failed and was rolled back");
      expect(broken.stderr).toContain("the database is as it was before 20261126000000_broken");
      const unknown = spawnSync(process.execPath, ["packages/server/bin/tether.mjs", "frobnicate"], { encoding: "utf8" });
      expect(unknown.status).toBe(2);
      expect(unknown.stderr).toContain('unknown command "frobnicate"');
    })();
  }, 300_000); // three CLI processes each starting PGlite: minutes on a loaded 2-core machine

  if (engine === "postgres") {
    it("two processes migrating at once apply each migration once", async () => {
      database = await createTestDatabase(engine);
      const [a, b] = await Promise.all([connect(database), connect(database)]);
      const results = await Promise.all([
        migrate({ sql: a, migrationsDir: "prisma/migrations" }),
        migrate({ sql: b, migrationsDir: "prisma/migrations" }),
      ]);
      expect(results.flatMap((r) => r.applied).sort()).toEqual(ALL);
      const rows = await a.query(`SELECT migration_name FROM "_prisma_migrations"`);
      expect(rows).toHaveLength(ALL.length);
    });
  }
});
