import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

export interface MigrationFile {
  /** Folder name, e.g. `20261125000000_init`: Prisma's migration_name. */
  name: string;
  sql: string;
  /** sha256 of migration.sql, hex: what Prisma stores in `_prisma_migrations.checksum`. */
  checksum: string;
}

/** Reads `<dir>/<name>/migration.sql` in name order, as Prisma does. */
export async function readMigrationFiles(dir: string): Promise<MigrationFile[]> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`migrations folder not found: ${path.resolve(dir)}`);
    }
    throw error;
  }
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const file = path.join(dir, name, "migration.sql");
    let sql: string;
    try {
      sql = await fs.readFile(file, "utf8");
    } catch {
      continue; // Prisma ignores folders without migration.sql too.
    }
    files.push({ name, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  return files;
}
