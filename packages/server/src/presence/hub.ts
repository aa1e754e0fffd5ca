import { TRPCError } from "@trpc/server";
import type { Value } from "loro-crdt";
import { z } from "zod";
import { resolvePresenceOptions, type PresenceOptions, type ResolvedPresenceOptions } from "./options.ts";
import { createLogger, type Logger } from "../log/index.ts";
import type { SqlClient } from "../store/index.ts";
import { PresenceRelay } from "./relay.ts";
import { encodeBase64 } from "../crdt/index.ts";
import { PresenceRoom, type PresenceOwner } from "./room.ts";
import { UpdateQueue } from "./updateQueue.ts";

export const presenceJoinInput = z.object({
  room: z.string().min(1).max(200),
  clientId: z.string().min(1).max(100),
});

export const presenceSetInput = presenceJoinInput.extend({ state: z.unknown() });

export type PresenceJoinInput = z.infer<typeof presenceJoinInput>;
export type PresenceSetInput = z.infer<typeof presenceSetInput>;

/**
 * What `$presence.join` yields. `update` is base64 of Loro `EphemeralStore` bytes. The first
 * message (and the one replacing a backlog a slow subscriber dropped) is the whole room:
 * `full: true`, and the client replaces what it had; it also carries `timeoutMs`, so the client
 * refreshes its entry in time. Later messages are one key's change each (set, delete, expiry).
 */
export interface PresenceMessage {
  update: string;
  full?: true;
  timeoutMs?: number;
}

export interface PresenceStats {
  rooms: number;
  /** clientIds holding an open join, over all rooms. */
  members: number;
}

export interface PresenceDeps {
  /** The session guard's `admit`: a signal aborted (reason UNAUTHORIZED) when the caller's session ends. */
  sessionEnded?: (ctx: object, until: AbortSignal) => AbortSignal | null;
  /** The store's SQL client: presence is relayed between nodes through its NOTIFY (see `relay`). */
  sql?: SqlClient;
  log?: Logger;
}

function ownerOf(ctx: object): PresenceOwner {
  const id = (ctx as { user?: { id?: unknown } | null }).user?.id;
  return id === undefined || id === null ? ctx : `user:${String(id)}`;
}

/**
 * Presence on this node: rooms of `EphemeralStore`s, made on the first join and dropped when the
 * last member leaves. Nothing is persisted.
 */
export class PresenceHub<Ctx extends object> {
  readonly options: ResolvedPresenceOptions<Ctx>;
  private readonly rooms = new Map<string, PresenceRoom>();
  /** Open joins per connection (a WebSocket's calls share one context object). */
  private readonly joinsPerConnection = new WeakMap<object, number>();
  private closed = false;
  /** Cross-node relay (null: this node's presence is its own). */
  private readonly relay: PresenceRelay | null;
  private readonly log: Logger;

  constructor(
    options: PresenceOptions<Ctx> | undefined,
    private readonly deps: PresenceDeps = {},
  ) {
    this.options = resolvePresenceOptions(options);
    this.log = deps.log ?? createLogger();
    const relay = this.options.relay ?? deps.sql?.engine === "postgres";
    if (relay && !deps.sql) throw new Error("presence.relay needs the store's SQL client");
    this.relay =
      relay && deps.sql
        ? new PresenceRelay({
            sql: deps.sql,
            log: this.log,
            timeoutMs: this.options.timeoutMs,
            room: (name) => this.rooms.get(name),
            rooms: () => this.rooms.values(),
            holdsEntries: () => this.holdsEntries(),
          })
        : null;
  }

  /** This node's id on the relay (null without one). */
  get nodeId(): string | null {
    return this.relay?.nodeId ?? null;
  }

  /** The `$presence.join` subscription's body. */
  async *join(ctx: Ctx, input: PresenceJoinInput, signal: AbortSignal | undefined): AsyncGenerator<PresenceMessage, void> {
    if (this.closed) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "presence is closed" });
    if (!(await this.options.authorize(ctx, input.room))) {
      throw new TRPCError({ code: "FORBIDDEN", message: "not allowed in this presence room" });
    }
    if (this.relay) {
      // Listening before the room opens, so the answers to its sync request are heard. A
      // database that cannot be reached leaves this join local-only (the next join retries).
      await this.relay.start().catch((error: unknown) => {
        this.log.warn({ err: (error as Error).message }, "presence relay: listen failed; this join is local to the node");
      });
    }
    if (this.closed) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "presence is closed" });
    const releaseSlot = this.takeConnectionSlot(ctx);
    const finished = new AbortController();
    let room: PresenceRoom | null = null;
    const cleanups: Array<() => void> = [];
    try {
      const sessionEnded = this.deps.sessionEnded?.(ctx, finished.signal) ?? null;
      const stop = AbortSignal.any([signal, sessionEnded].filter((s): s is AbortSignal => !!s));
      room = this.room(input.room);
      // Queue first, then the snapshot: nothing that happens from here on can fall between them
      // (a change seen twice is harmless: applying the same entry again changes nothing).
      const queue = new UpdateQueue(this.options.maxQueuedUpdates);
      cleanups.push(room.subscribe(queue));
      cleanups.push(room.join(input.clientId, ownerOf(ctx)));
      const full = (): PresenceMessage => ({ update: encodeBase64(room!.encodeAll()), full: true, timeoutMs: this.options.timeoutMs });
      yield full();
      for (;;) {
        const next = await queue.next(stop);
        if (!next) break;
        yield next.kind === "full" ? full() : { update: next.update };
      }
      if (sessionEnded?.aborted) throw sessionEnded.reason;
    } finally {
      finished.abort();
      // Unsubscribe before leaving: the leaver needs no echo of its own deletion.
      for (const cleanup of cleanups) cleanup();
      if (room?.empty) {
        room.close();
        if (this.rooms.get(room.name) === room) this.rooms.delete(room.name);
      }
      releaseSlot();
    }
  }

  /** The `$presence.set` procedure's body. */
  set(ctx: Ctx, input: PresenceSetInput): { ok: true } {
    const serialized = input.state === undefined ? undefined : JSON.stringify(input.state);
    if (serialized === undefined) throw new TRPCError({ code: "BAD_REQUEST", message: "state must be JSON" });
    if (Buffer.byteLength(serialized, "utf8") > this.options.maxStateBytes) {
      throw new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `presence state over ${this.options.maxStateBytes} bytes` });
    }
    const room = this.rooms.get(input.room);
    if (!room || !room.holds(input.clientId, ownerOf(ctx))) {
      throw new TRPCError({ code: "FORBIDDEN", message: "join this room with this clientId before setting its state" });
    }
    // Parsed back from its JSON: what is stored is exactly what the wire can carry.
    room.set(input.clientId, JSON.parse(serialized) as Value, serialized);
    return { ok: true };
  }

  /** Current states of a room (server-side reads, tests). */
  peek(room: string): Record<string, unknown> {
    return (this.rooms.get(room)?.store.getAllStates() ?? {}) as Record<string, unknown>;
  }

  stats(): PresenceStats {
    let members = 0;
    for (const room of this.rooms.values()) members += room.memberCount;
    return { rooms: this.rooms.size, members };
  }

  /**
   * Ends every join and drops every room; with a relay, tells the other nodes this node's entries
   * are gone (without one, they would expire there after the timeout).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const room of this.rooms.values()) room.close();
    this.rooms.clear();
    await this.relay?.close();
  }

  private holdsEntries(): boolean {
    for (const room of this.rooms.values()) if (room.memberCount > 0) return true;
    return false;
  }

  private room(name: string): PresenceRoom {
    let room = this.rooms.get(name);
    if (!room) {
      room = new PresenceRoom(name, this.options.timeoutMs, this.relay);
      this.rooms.set(name, room);
      this.relay?.opened(name);
    }
    return room;
  }

  private takeConnectionSlot(ctx: object): () => void {
    const open = this.joinsPerConnection.get(ctx) ?? 0;
    if (open >= this.options.maxRoomsPerConnection) {
      throw new TRPCError({
        code: "TOO_MANY_REQUESTS",
        message: `at most ${this.options.maxRoomsPerConnection} presence rooms per connection`,
      });
    }
    this.joinsPerConnection.set(ctx, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.joinsPerConnection.set(ctx, (this.joinsPerConnection.get(ctx) ?? 1) - 1);
    };
  }
}
