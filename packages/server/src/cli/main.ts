import { parseArgs } from "node:util";
import { createLogger } from "../log/index.ts";
import { migrate, MigrationError } from "../migrate/index.ts";
import { openDatabase } from "../store/index.ts";

const USAGE = `usage: tether <command> [options]

commands:
  migrate   apply pending Prisma migrations, install Tether's tables and change-capture triggers

options:
  --url <postgres://…>   database (default: DATABASE_URL if it is a postgres URL, else embedded PGlite)
  --data-dir <dir>       PGlite data directory (default: TETHER_DATA_DIR or .tether/pgdata)
  --migrations <dir>     migrations folder (default: prisma/migrations)
  -h, --help
`;

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        "data-dir": { type: "string" },
        migrations: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    process.stderr.write(`tether: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.help || !command) {
    process.stdout.write(USAGE);
    return parsed.values.help ? 0 : 2;
  }
  if (command !== "migrate") {
    process.stderr.write(`tether: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  return runMigrate(parsed.values);
}

async function runMigrate(values: { url?: string; "data-dir"?: string; migrations?: string }): Promise<number> {
  const log = createLogger("tether-migrate");
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let database;
  try {
    database = await openDatabase({ url: values.url, dataDir: values["data-dir"] }, log);
  } catch (error) {
    process.stderr.write(`tether migrate: cannot open the database: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    out(`tether migrate: ${database.engine} at ${database.location}`);
    const result = await migrate({
      sql: database.sql,
      migrationsDir: values.migrations,
      onProgress: ({ migration, index, total }) => out(`  applying ${migration} (${index + 1}/${total})`),
    });
    if (result.applied.length === 0) out(`  no pending migrations (${result.alreadyApplied.length} applied)`);
    out(`  change capture on ${result.capturedTables.length} table(s): ${result.capturedTables.join(", ")}`);
    return 0;
  } catch (error) {
    if (error instanceof MigrationError) {
      process.stderr.write(`tether migrate: ${error.message}\n  the database is as it was before ${error.migration}\n`);
    } else {
      process.stderr.write(`tether migrate: ${(error as Error).message}\n`);
    }
    return 1;
  } finally {
    await database.sql.close();
  }
}
