export { createStore } from "./createStore.ts";
export type { Store, StoreOptions, PrismaLike } from "./createStore.ts";
export { openDatabase, isPostgresUrl, DEFAULT_DATA_DIR } from "./openDatabase.ts";
export type { Database, DatabaseDriver, DatabaseOptions, PrismaAdapter } from "./openDatabase.ts";
export type { Engine, SqlClient, SqlConnection, NotificationHandlers, Listening } from "./sqlClient.ts";
export { LISTENER_APPLICATION_NAME, DEFAULT_RECONNECT } from "./postgresClient.ts";
export type { ReconnectOptions } from "./postgresClient.ts";
export { withQuerySignal, querySignal, watchQueryWaits, QueryCancelledError, CANCELLER_APPLICATION_NAME } from "./cancellation.ts";
export type { QueryWaitWatcher } from "./cancellation.ts";
