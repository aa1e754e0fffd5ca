import { randomBytes } from "node:crypto";
import type { Logger } from "../log/index.ts";
import { NotifyChannel } from "../notify/index.ts";
import type { SqlClient } from "../store/index.ts";
import type { PresenceRoom, RoomRelay } from "./room.ts";

/** The NOTIFY channel presence changes travel on between nodes. */
export const PRESENCE_CHANNEL = "tether_presence";
/** Where a message too big for a NOTIFY payload waits for the other nodes (UNLOGGED, swept). */
export const PRESENCE_SPILL_TABLE = "_tether_presence_spill";

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
 */
type Message =
  | { n: string; q: number; k: "set"; r: string; c: string; s: unknown }
  | { n: string; q: number; k: "del"; r: string; c: string }
  | { n: string; q: number; k: "all"; r: string; e: Record<string, unknown> }
  | { n: string; q: number; k: "sync"; r: string; again?: 1 }
  | { n: string; q: number; k: "alive" }
  | { n: string; q: number; k: "bye" };

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
  private readonly channel: NotifyChannel;
  /** Sends were lost (database unreachable): once sending works again, re-announce everything. */
  private lostSends = false;
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(private readonly options: PresenceRelayOptions) {
    this.channel = new NotifyChannel({
      sql: options.sql,
      log: options.log,
      channel: PRESENCE_CHANNEL,
      spillTable: PRESENCE_SPILL_TABLE,
      onMessage: (payload) => this.receive(payload),
      onConnect: (again) => again && this.reconnected(),
      onSendFailed: () => (this.lostSends = true),
      onSent: () => {
        if (this.lostSends && !this.closed) this.reannounce();
      },
    });
    this.heartbeat = setInterval(
      () => {
        if (this.channel.started && this.options.holdsEntries()) this.send({ k: "alive" });
      },
      Math.max(10, Math.floor(options.timeoutMs / 3)),
    );
    this.heartbeat.unref?.();
  }

  /** Starts listening (once; a failed start is retried by the next call). */
  start(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.channel.start();
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
    if (this.channel.started) this.send({ k: "bye" });
    this.closed = true;
    await this.channel.close();
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
    this.channel.send(payload);
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

  // -- receiving -------------------------------------------------------------------------------

  /**
   * The listener was down: whatever was said meanwhile is lost. Keep the other nodes' entries
   * only if they confirm them again; ask every room anew.
   */
  private reconnected(): void {
    for (const room of this.options.rooms()) {
      room.unconfirmRemote();
      this.send({ k: "sync", r: room.name, again: 1 });
    }
  }

  private receive(payload: string): void {
    let message: Message;
    try {
      message = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (this.closed || message.n === this.nodeId) return;
    this.apply(message);
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
