// Prisma CLI configuration: the JS schema engine through a driver adapter, fully offline.
// `prisma generate` only needs DATABASE_URL to resolve; migrations are applied by `tether migrate`
// (see docs/architecture.md); the adapter here serves Prisma's own tooling (`migrate diff`).
import path from "node:path";
import { defineConfig } from "prisma/config";

process.env.DATABASE_URL ??= "postgresql://embedded/tether";
process.env.CHECKPOINT_DISABLE = "1";
process.env.PRISMA_HIDE_UPDATE_MESSAGE = "1";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join("prisma", "schema.prisma"),
  adapter: async () => {
    const { PGlite } = await import("@electric-sql/pglite");
    const { pgliteAdapter } = await import("./packages/server/src/store/pgliteAdapter.ts");
    // In-memory unless pointed at a data dir: `prisma migrate diff` only needs a scratch database,
    // and the app's embedded database may be open in a running dev server.
    const dataDir = process.env.TETHER_DATA_DIR;
    return pgliteAdapter(dataDir ? new PGlite(dataDir) : new PGlite());
  },
});
