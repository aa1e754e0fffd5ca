import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the demo's schema and migrations live in its `prisma/`. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const migrationsDir = path.join(repoRoot, "prisma", "migrations");
/** Embedded database of the demo (unless DATABASE_URL points at Postgres). */
export const dataDir = process.env.TETHER_DATA_DIR ?? path.join(repoRoot, ".tether", "demo");
