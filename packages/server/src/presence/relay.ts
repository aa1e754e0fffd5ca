import { randomBytes } from "node:crypto";
import type { Logger } from "../log/index.ts";
import type { Listening, SqlClient } from "../store/index.ts";
import type { PresenceRoom, RoomRelay } from "./room.ts";

/** The NOTIFY channel presence changes travel on between nodes. */
export const PRESENCE_CHANNEL = "tether_presence";
/** Where a message too big for a NOTIFY payload waits for the other nodes (UNLOGGED, swept). */
export const PRESENCE_SPILL_TABLE = "_tether_presence_spill";
/** NOTIFY payloads must stay under 8000 bytes; a bigger message goes through the spill table. */
const MAX_PAYLOAD_BYTES = 7_900;
/** Spilled rows older than this are deleted (every node reads its notification within ms). */
const SPILL_KEEP_MS = 60_000;
/** Messages sent per NOTIFY statement. */
const BATCH = 100;

/**
 * What travels on the channel. `n` is the sending node, `q` its sequence number (keeps every
 * payload of one statement distinct: Postgres folds identical payloads of one transaction).
 * - `set` / `del`: an entry a join on node `n` holds was set (`s`: its state) or deleted (leave,
 *   expiry on `n`'s clock).
 * - `all`: every entry `n` holds in room `r` (its answer to `sync`): the receiver drops the ones
 *   it still has from `n` that are not listed.
 * - `sync`: "who has room `r`?", sent by a node that just opened the room; `again` after its
 *   listener reconnected (it may have missed deletions): then every node answers, even one that
 *   no longer has the room (with nothing), so the asker can drop what that node deleted.
 * - `alive`: `n` is up (every timeout/3 while it holds entries); its entries stay.
 * - `bye`: `n` is closing (or recovering from lost sends); drop everything it holds.
 * - `x`: the message is row `x` of the spill table.
 */
type Message =
  | { n: string; q: number; k: "set"; r: string; c: string; s: unknown }
  | { n: string; q: number; k: "del"; r: string; c: string }
  | { n: string; q: number; k: "all"; r: string; e: Record<string, unknown> }
  | { n: string; q: number; k: "sync"; r: string; again?: 1 }
  | { n: string; q: number; k: "alive" }
  | { n: string; q: number; k: "bye" };

type Envelope = Message | { n: string; q: number; x: string };

export interface PresenceRelayOptions {
  sql: SqlClient;
  log: Logger;
  timeoutMs: number;
  /** The room of this name on this node, if it has one. */
  room(name: string): PresenceRoom | undefined;
  rooms(): Iterable<PresenceRoom>;
  /** Whether any join on this node holds an entry (heartbeats are sent only then). */
  holdsEntries(): boolean;
}

/**
 * Presence across nodes sharing one database: each node relays the changes of the entries its
 * own joins hold through `pg_notify` and applies other nodes' changes to the rooms it has. One
 * clock per entry: only the owner node expires an entry (and relays the deletion); elsewhere an
 * entry lives while its owner node's heartbeat keeps coming, so a crashed node's entries expire
 * on the other nodes within the timeout of its last heartbeat.
 *
 * Sends are serialized (one statement at a time, batched while one is in flight): NOTIFY delivers
 * in commit order, so every node sees each node's changes in the order it made them.
 */
export class PresenceRelay implements RoomRelay {
  readonly nodeId = randomBytes(6).toString("hex");
  private seq = 0;
  private listening: Promise<Listening> | null = null;
  private connectedOnce = false;
  private readonly outbox: string[] = [];
  private sending: Promise<void> | null = null;
  /** Sends were lost (database unreachable): once sending works again, re-announce everything. */
  private lostSends = false;
  private inbox: Promise<void> = Promise.resolve();
  private spillTable: Promise<void> | null = null;
  private lastSpillSweep = 0;
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(private readonly options: PresenceRelayOptions) {
    this.heartbeat = setInterval(
      () => {
        if (this.listening && this.options.holdsEntries()) this.send({ k: "alive" });
      },
      Math.max(10, Math.floor(options.timeoutMs / 3)),
    );
    this.heartbeat.unref?.();
  }

  /** Starts listening (once; a failed start is retried by the next call). */
  start(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.listening ??= this.options.sql
      .listen(PRESENCE_CHANNEL, { onNotify: (payload) => this.receive(payload), onConnect: () => this.connected() })
      .catch((error: unknown) => {
        this.listening = null;
        throw error;
      });
    return this.listening.then(() => undefined);
  }

  /** A room was opened on this node: ask the others for what they hold in it. */
  opened(room: string): void {
    this.send({ k: "sync", r: room });
  }

  set(room: string, clientId: string, json: string): void {
    this.sendRaw(this.header({ k: "set", r: room, c: clientId }) + `,"s":${json}}`);
  }

  delete(room: string, clientId: string): void {
    this.send({ k: "del", r: room, c: clientId });
  }

  /** Tells the others this node's entries are gone, then stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.heartbeat);
    if (this.listening) this.send({ k: "bye" });
    this.closed = true;
    await this.sending;
    const listening = await this.listening?.catch(() => null);
    await listening?.close().catch(() => undefined);
  }

  // -- sending ---------------------------------------------------------------------------------

  /** `{"n":…,"q":…,…fields` without the closing brace. */
  private header(fields: Record<string, unknown>): string {
    return JSON.stringify({ n: this.nodeId, q: ++this.seq, ...fields }).slice(0, -1);
  }

  private send(fields: Record<string, unknown>): void {
    this.sendRaw(this.header(fields) + "}");
  }

  private sendRaw(payload: string): void {
    if (this.closed) return;
    this.outbox.push(payload);
    this.sending ??= this.pump();
  }

  private async pump(): Promise<void> {
    while (this.outbox.length > 0) {
      const batch = this.outbox.splice(0, BATCH);
      try {
        const payloads: string[] = [];
        for (const payload of batch) payloads.push(Buffer.byteLength(payload, "utf8") > MAX_PAYLOAD_BYTES ? await this.spill(payload) : payload);
        await this.options.sql.query("SELECT pg_notify($1, m) FROM unnest($2::text[]) AS m", [PRESENCE_CHANNEL, payloads]);
        if (this.lostSends && !this.closed) this.reannounce();
      } catch (error) {
        this.lostSends = true;
        this.options.log.warn({ err: (error as Error).message, lost: batch.length }, "presence relay: notify failed");
      }
    }
    this.sending = null;
  }

  /**
   * After lost sends the others may hold entries this node has since deleted: tell them to drop
   * everything from this node, then send each room's entries again.
   */
  private reannounce(): void {
    this.lostSends = false;
    this.send({ k: "bye" });
    for (const room of this.options.rooms()) this.sendAll(room);
  }

  private sendAll(room: PresenceRoom): void {
    this.sendEntries(room.name, room.ownEntries());
  }

  private sendEntries(room: string, own: Record<string, string>): void {
    const entries = Object.entries(own).map(([clientId, json]) => `${JSON.stringify(clientId)}:${json}`);
    this.sendRaw(this.header({ k: "all", r: room }) + `,"e":{${entries.join(",")}}}`);
  }

  private async spill(payload: string): Promise<string> {
    const { sql } = this.options;
    this.spillTable ??= sql
      .transaction(async (tx) => {
        // Two nodes creating the table at once would collide on its catalog rows.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [PRESENCE_SPILL_TABLE]);
        await tx.exec(
          `CREATE UNLOGGED TABLE IF NOT EXISTS "${PRESENCE_SPILL_TABLE}" (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
        );
      })
      .catch((error: unknown) => {
        this.spillTable = null;
        throw error;
      });
    await this.spillTable;
    const rows = await sql.query<{ id: string }>(`INSERT INTO "${PRESENCE_SPILL_TABLE}" (payload) VALUES ($1) RETURNING id::text AS id`, [payload]);
    if (Date.now() - this.lastSpillSweep > SPILL_KEEP_MS / 4) {
      this.lastSpillSweep = Date.now();
      await sql.query(`DELETE FROM "${PRESENCE_SPILL_TABLE}" WHERE at < now() - make_interval(secs => $1)`, [SPILL_KEEP_MS / 1000]);
    }
    return `${this.header({ x: rows[0]!.id })}}`;
  }

  // -- receiving -------------------------------------------------------------------------------

  private connected(): void {
    if (!this.connectedOnce) {
      this.connectedOnce = true;
      return;
    }
    // The listener was down: whatever was said meanwhile is lost. Keep the other nodes' entries
    // only if they confirm them again; ask every room anew.
    for (const room of this.options.rooms()) {
      room.unconfirmRemote();
      this.send({ k: "sync", r: room.name, again: 1 });
    }
  }

  private receive(payload: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      return;
    }
    if (this.closed || envelope.n === this.nodeId) return;
    // Fetched at once, applied in arrival order: a spilled message is never overtaken.
    const ready: Promise<Message | null> = "x" in envelope ? this.unspill(envelope.x) : Promise.resolve(envelope);
    this.inbox = this.inbox
      .then(() => ready)
      .then((message) => {
        if (message && !this.closed) this.apply(message);
      })
      .catch((error: unknown) => this.options.log.warn({ err: (error as Error).message }, "presence relay: message dropped"));
  }

  private async unspill(id: string): Promise<Message | null> {
    const rows = await this.options.sql.query<{ payload: string }>(`SELECT payload FROM "${PRESENCE_SPILL_TABLE}" WHERE id = $1`, [id]);
    return rows[0] ? (JSON.parse(rows[0].payload) as Message) : null;
  }

  private apply(message: Message): void {
    const { room, rooms } = this.options;
    switch (message.k) {
      case "set":
        room(message.r)?.applyRemote(message.n, message.c, JSON.stringify(message.s));
        return;
      case "del":
        room(message.r)?.applyRemote(message.n, message.c, undefined);
        return;
      case "all": {
        const entries: Record<string, string> = {};
        for (const [clientId, state] of Object.entries(message.e)) entries[clientId] = JSON.stringify(state);
        room(message.r)?.applyRemoteAll(message.n, entries);
        return;
      }
      case "sync": {
        // Answered even when this node holds nothing there: the asker drops what it still had from us.
        const here = room(message.r);
        if (here) this.sendAll(here);
        else if (message.again) this.sendEntries(message.r, {});
        return;
      }
      case "alive":
        for (const each of rooms()) each.refreshRemote(message.n);
        return;
      case "bye":
        for (const each of rooms()) each.dropRemote(message.n);
        return;
    }
  }
}
