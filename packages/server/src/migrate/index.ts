export { migrate, MigrationError, MIGRATE_LOCK_KEY } from "./migrate.ts";
export type { MigrateOptions, MigrateProgress, MigrateResult } from "./migrate.ts";
export { readMigrationFiles } from "./migrationFiles.ts";
export type { MigrationFile } from "./migrationFiles.ts";
export { installCaptureTriggers } from "./captureTriggers.ts";
export { CHANGES_CHANNEL, TETHER_SCHEMA_SQL } from "./tetherSchema.ts";
