import type { Logger } from "../log/index.ts";
import type { Listening, SqlClient } from "../store/index.ts";

/** Limits of a NOTIFY channel between nodes. */
export interface NotifyChannelConfig {
  /** NOTIFY payloads must stay under 8000 bytes; a bigger message goes through the spill table. */
  maxPayloadBytes: number;
  /** Spilled rows older than this are deleted (every node reads its notification within ms). */
  spillKeepMs: number;
  /** Messages sent per NOTIFY statement. */
  batch: number;
}

export const DEFAULT_NOTIFY_CHANNEL_CONFIG: NotifyChannelConfig = {
  maxPayloadBytes: 7_900,
  spillKeepMs: 60_000,
  batch: 100,
};

export interface NotifyChannelOptions {
  sql: SqlClient;
  log: Logger;
  /** The NOTIFY channel. */
  channel: string;
  /** UNLOGGED table for payloads too big for NOTIFY (created on first use). */
  spillTable: string;
  /** Every message another node sent (or this one: filter by your own node id), in send order. */
  onMessage: (payload: string) => void;
  /** The listener connected (`again`: after a drop, messages sent meanwhile are lost). */
  onConnect?: (again: boolean) => void;
  /** A batch of sends failed (database unreachable): the sender may want to repair later. */
  onSendFailed?: (lost: number) => void;
  /** A batch was sent (after failures: the moment to repair). */
  onSent?: () => void;
  config?: Partial<NotifyChannelConfig>;
}

/** A spilled message's stand-in: its row id (payloads are JSON, which never starts with `#`; no NUL: Postgres text cannot hold one). */
const SPILLED = "#spill:";

/**
 * Messages between nodes sharing one database, through `pg_notify` (presence, CRDT relay). Sends
 * are serialized, one statement at a time and batched while one is in flight: NOTIFY delivers in
 * commit order, so every node sees each node's messages in the order it sent them. A message over
 * NOTIFY's payload limit waits in an UNLOGGED spill table and travels as its row id; the
 * receiver fetches it before delivering anything after it (never overtaken).
 */
export class NotifyChannel {
  private readonly config: NotifyChannelConfig;
  private listening: Promise<Listening> | null = null;
  private connectedOnce = false;
  private readonly outbox: string[] = [];
  private sending: Promise<void> | null = null;
  private inbox: Promise<void> = Promise.resolve();
  private spillTable: Promise<void> | null = null;
  private lastSpillSweep = 0;
  private closed = false;

  constructor(private readonly options: NotifyChannelOptions) {
    this.config = { ...DEFAULT_NOTIFY_CHANNEL_CONFIG, ...options.config };
  }

  /** Starts listening (once; a failed start is retried by the next call). */
  start(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.listening ??= this.options.sql
      .listen(this.options.channel, { onNotify: (payload) => this.receive(payload), onConnect: () => this.connected() })
      .catch((error: unknown) => {
        this.listening = null;
        throw error;
      });
    return this.listening.then(() => undefined);
  }

  get started(): boolean {
    return this.listening !== null;
  }

  send(payload: string): void {
    if (this.closed) return;
    this.outbox.push(payload);
    this.sending ??= this.pump();
  }

  /** Sends what is queued, then stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sending;
    const listening = await this.listening?.catch(() => null);
    await listening?.close().catch(() => undefined);
  }

  private async pump(): Promise<void> {
    while (this.outbox.length > 0) {
      const batch = this.outbox.splice(0, this.config.batch);
      try {
        const payloads: string[] = [];
        for (const payload of batch) {
          payloads.push(Buffer.byteLength(payload, "utf8") > this.config.maxPayloadBytes ? await this.spill(payload) : payload);
        }
        await this.options.sql.query("SELECT pg_notify($1, m) FROM unnest($2::text[]) AS m", [this.options.channel, payloads]);
        this.options.onSent?.();
      } catch (error) {
        this.options.log.warn({ err: (error as Error).message, lost: batch.length, channel: this.options.channel }, "notify: send failed");
        this.options.onSendFailed?.(batch.length);
      }
    }
    this.sending = null;
  }

  private async spill(payload: string): Promise<string> {
    const { sql } = this.options;
    const table = this.options.spillTable;
    this.spillTable ??= sql
      .transaction(async (tx) => {
        // Two nodes creating the table at once would collide on its catalog rows.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [table]);
        await tx.exec(
          `CREATE UNLOGGED TABLE IF NOT EXISTS "${table}" (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
        );
      })
      .catch((error: unknown) => {
        this.spillTable = null;
        throw error;
      });
    await this.spillTable;
    const rows = await sql.query<{ id: string }>(`INSERT INTO "${table}" (payload) VALUES ($1) RETURNING id::text AS id`, [payload]);
    if (Date.now() - this.lastSpillSweep > this.config.spillKeepMs / 4) {
      this.lastSpillSweep = Date.now();
      await sql.query(`DELETE FROM "${table}" WHERE at < now() - make_interval(secs => $1)`, [this.config.spillKeepMs / 1000]);
    }
    return SPILLED + rows[0]!.id;
  }

  private connected(): void {
    const again = this.connectedOnce;
    this.connectedOnce = true;
    this.options.onConnect?.(again);
  }

  private receive(payload: string): void {
    if (this.closed) return;
    // Fetched at once, delivered in arrival order: a spilled message is never overtaken.
    const ready = payload.startsWith(SPILLED) ? this.unspill(payload.slice(SPILLED.length)) : Promise.resolve(payload);
    this.inbox = this.inbox
      .then(() => ready)
      .then((message) => {
        if (message !== null && !this.closed) this.options.onMessage(message);
      })
      .catch((error: unknown) => this.options.log.warn({ err: (error as Error).message, channel: this.options.channel }, "notify: message dropped"));
  }

  private async unspill(id: string): Promise<string | null> {
    const rows = await this.options.sql.query<{ payload: string }>(`SELECT payload FROM "${this.options.spillTable}" WHERE id = $1`, [id]);
    return rows[0]?.payload ?? null;
  }
}
