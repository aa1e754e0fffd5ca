import pg from "pg";
import type { Logger } from "pino";
import type { Listening, NotificationHandlers, SqlClient, SqlConnection } from "./sqlClient.ts";
import { withCheckedOut } from "./checkedOut.ts";

export interface ReconnectOptions {
  /** First delay after the listening connection drops (ms). */
  initialDelayMs: number;
  /** Upper bound of the exponential backoff (ms). */
  maxDelayMs: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = { initialDelayMs: 50, maxDelayMs: 5_000 };

/** Name the listener connection carries in pg_stat_activity (tests terminate it by this name). */
export const LISTENER_APPLICATION_NAME = "tether-listener";

function connectionOf(client: pg.Pool | pg.PoolClient | pg.Client): SqlConnection {
  return {
    async query<Row>(sql: string, params?: readonly unknown[]) {
      const result = await client.query(sql, params ? [...params] : undefined);
      return result.rows as Row[];
    },
    async exec(script: string) {
      // No parameters: the simple protocol, which accepts several statements.
      await client.query(script);
    },
  };
}

export function postgresClient(
  pool: pg.Pool,
  connectionString: string,
  log: Logger,
  reconnect: ReconnectOptions = DEFAULT_RECONNECT,
): SqlClient {
  const listenings = new Set<Listening>();
  return {
    engine: "postgres",
    ...connectionOf(pool),
    async transaction(fn) {
      return withCheckedOut(pool, async (client) => {
        try {
          await client.query("BEGIN");
          const result = await fn(connectionOf(client));
          await client.query("COMMIT");
          return result;
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw error;
        }
      });
    },
    async withConnection(fn) {
      return withCheckedOut(pool, (client) => fn(connectionOf(client)));
    },
    async listen(channel, handlers) {
      const listening = await listenWithReconnect(connectionString, channel, handlers, log, reconnect);
      listenings.add(listening);
      return {
        close: async () => {
          listenings.delete(listening);
          await listening.close();
        },
      };
    },
    async close() {
      await Promise.all([...listenings].map((l) => l.close()));
      await pool.end();
    },
  };
}

/**
 * A dedicated LISTEN connection that comes back by itself: when it drops (server restart,
 * pg_terminate_backend, network), it retries with exponential backoff and jitter, then calls
 * onConnect so the caller catches up from the table whatever was committed in between.
 */
async function listenWithReconnect(
  connectionString: string,
  channel: string,
  handlers: NotificationHandlers,
  log: Logger,
  options: ReconnectOptions,
): Promise<Listening> {
  let closed = false;
  let client: pg.Client | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let attempt = 0;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString, application_name: LISTENER_APPLICATION_NAME });
    next.on("notification", (msg) => {
      if (msg.channel === channel) handlers.onNotify(msg.payload ?? "");
    });
    next.on("error", (error) => lost(next, error));
    next.on("end", () => lost(next, new Error("listener connection ended")));
    await next.connect();
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    if (closed) {
      await next.end().catch(() => undefined);
      return;
    }
    client = next;
    attempt = 0;
    handlers.onConnect?.();
  };

  const lost = (which: pg.Client, error: Error): void => {
    if (closed || which !== client) return;
    client = undefined;
    which.removeAllListeners("notification");
    which.end().catch(() => undefined);
    log.warn({ err: error.message, channel }, "change-feed listener lost; reconnecting");
    handlers.onDisconnect?.(error);
    schedule();
  };

  const schedule = (): void => {
    if (closed) return;
    const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    attempt += 1;
    retryTimer = setTimeout(() => {
      connect().catch((error: unknown) => {
        log.warn({ err: (error as Error).message, attempt }, "change-feed listener reconnect failed");
        schedule();
      });
    }, delay);
  };

  await connect();
  return {
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => undefined);
    },
  };
}
