/**
 * The one raw-SQL surface Tether's own machinery (migrations, change feed) uses, over either
 * engine. Prisma is the app's query layer; this is for what Prisma cannot express: multi-statement
 * scripts, session advisory locks, LISTEN.
 */
export type Engine = "pglite" | "postgres";

export interface SqlConnection {
  /** One statement with $1… parameters. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** A script of several statements, no parameters. */
  exec(script: string): Promise<void>;
}

export interface NotificationHandlers {
  /** A NOTIFY arrived on the channel (a hint: the table is the truth). */
  onNotify: (payload: string) => void;
  /**
   * The listening connection is (re)established. Called once at start and after every reconnect;
   * anything committed while it was down must be caught up from the table here.
   */
  onConnect?: () => void;
  /** The listening connection dropped; it is being re-established with backoff. */
  onDisconnect?: (error: Error) => void;
}

export interface Listening {
  close(): Promise<void>;
}

export interface SqlClient extends SqlConnection {
  readonly engine: Engine;
  /** Runs fn in one transaction on one connection; commits if it resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: SqlConnection) => Promise<T>): Promise<T>;
  /** Runs fn on one dedicated connection (session-level state such as advisory locks). */
  withConnection<T>(fn: (conn: SqlConnection) => Promise<T>): Promise<T>;
  listen(channel: string, handlers: NotificationHandlers): Promise<Listening>;
  close(): Promise<void>;
}
