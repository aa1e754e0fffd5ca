/**
 * Vitest globalSetup: one migrated PGlite database per test run, dumped to a file that
 * `createTestStore` loads for each PGlite store instead of running initdb and every migration
 * again (~2–3 s per store on a loaded 2-core machine, ~0.7 s loaded from the dump). The path
 * reaches the test workers in the environment (PGLITE_TEMPLATE_ENV); removed after the run.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { createStore, migrate } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";

export const PGLITE_TEMPLATE_ENV = "TETHER_TEST_PGLITE_TEMPLATE";

export default async function setup(): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), "tether-pglite-template-"));
  const pglite = await PGlite.create("memory://");
  const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), pglite });
  await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
  await store.close();
  const dump = await pglite.dumpDataDir("none");
  await pglite.close();
  const file = join(dir, "migrated.tar");
  writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  process.env[PGLITE_TEMPLATE_ENV] = file;
  return () => rmSync(dir, { recursive: true, force: true });
}
