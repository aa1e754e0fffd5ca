import { toBase64, type PresenceJoinInput, type PresenceMessage, type PresenceSetInput } from "@tether/protocol";
import { TRPCError } from "@trpc/server";
import type { Value } from "loro-crdt";
import { z } from "zod";
import { AccessWatch, type AccessLease, type RecordedRun, type Revocation } from "../access/index.ts";
import type { ChangeFeed } from "../feed/index.ts";
import { resolvePresenceOptions, type PresenceOptions, type ResolvedPresenceOptions } from "./options.ts";
import { createLogger, type Logger } from "../log/index.ts";
import type { SqlClient } from "../store/index.ts";
import { PresenceRelay } from "./relay.ts";
import { PresenceRoom, type PresenceOwner } from "./room.ts";
import { UpdateQueue } from "./updateQueue.ts";

// The wire types are @tether/protocol's; the schemas are checked against them (`satisfies`).
export type { PresenceJoinInput, PresenceMessage, PresenceSetInput } from "@tether/protocol";

export const presenceJoinInput = z.object({
  room: z.string().min(1).max(200),
  clientId: z.string().min(1).max(100),
}) satisfies z.ZodType<PresenceJoinInput, PresenceJoinInput>;

export const presenceSetInput = presenceJoinInput.extend({ state: z.unknown() }) satisfies z.ZodType<PresenceSetInput, PresenceSetInput>;

export interface PresenceStats {
  rooms: number;
  /** clientIds holding an open join, over all rooms. */
  members: number;
  /** `authorize` re-checks run because a committed change touched what it read. */
  rechecks: number;
}

export interface PresenceDeps {
  /** The session guard's `admit`: a signal aborted (reason UNAUTHORIZED) when the caller's session ends. */
  sessionEnded?: (ctx: object, until: AbortSignal) => AbortSignal | null;
  /** The store's SQL client: presence is relayed between nodes through its NOTIFY (see `relay`). */
  sql?: SqlClient;
  log?: Logger;
  /**
   * Keeps joins' verdicts current: `authorize` runs through this (policy-scoped, read-tracked
   * `ctx.db`) and runs again when the node's change feed brings a change to what it read.
   * Without it, `authorize` runs once per join with no `ctx.db`.
   */
  access?: {
    run: RecordedRun;
    feed: () => Promise<ChangeFeed>;
    schema: ConstructorParameters<typeof AccessWatch>[0]["schema"];
    /** The caller's sharing scope (user): one re-check per (room, scope). */
    scope: (ctx: object) => string;
  };
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
  /** Each join's verdict, re-checked when a committed change touches what `authorize` read. */
  private readonly access: AccessWatch | null;
  /** The verdicts of the open joins of each `room\0clientId`: a set needs them all to hold. */
  private readonly leases = new Map<string, Set<AccessLease>>();

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
    this.access = deps.access
      ? new AccessWatch({ schema: deps.access.schema, log: this.log, run: deps.access.run, feed: deps.access.feed })
      : null;
  }

  /** This node's id on the relay (null without one). */
  get nodeId(): string | null {
    return this.relay?.nodeId ?? null;
  }

  /** The `$presence.join` subscription's body. */
  async *join(ctx: Ctx, input: PresenceJoinInput, signal: AbortSignal | undefined): AsyncGenerator<PresenceMessage, void> {
    if (this.closed) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "presence is closed" });
    // Revoked later (a change made `authorize` refuse): the join ends FORBIDDEN at once.
    const revoked = new AbortController();
    const lease = await this.admit(ctx, input.room, (why) => revoked.abort(revocationError(why)));
    if (this.relay) {
      // Listening before the room opens, so the answers to its sync request are heard. A
      // database that cannot be reached leaves this join local-only (the next join retries).
      await this.relay.start().catch((error: unknown) => {
        this.log.warn({ err: (error as Error).message }, "presence relay: listen failed; this join is local to the node");
      });
    }
    if (this.closed) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "presence is closed" });
    let releaseSlot = () => undefined as void;
    const finished = new AbortController();
    let room: PresenceRoom | null = null;
    const cleanups: Array<() => void> = [];
    // Unsubscribe before leaving: the leaver needs no echo of its own deletion. Run at once on a
    // revocation (the others see the entry go, and this join gets nothing more, even if its
    // consumer is not reading), and again (a no-op) when the generator ends.
    const leave = () => {
      for (const cleanup of cleanups.splice(0)) cleanup();
    };
    revoked.signal.addEventListener("abort", leave, { once: true });
    try {
      if (lease) cleanups.push(this.holdLease(input, lease));
      releaseSlot = this.takeConnectionSlot(ctx);
      const sessionEnded = this.deps.sessionEnded?.(ctx, finished.signal) ?? null;
      const stop = AbortSignal.any([signal, sessionEnded, revoked.signal].filter((s): s is AbortSignal => !!s));
      if (revoked.signal.aborted) throw revoked.signal.reason;
      room = this.room(input.room);
      // Queue first, then the snapshot: nothing that happens from here on can fall between them
      // (a change seen twice is harmless: applying the same entry again changes nothing).
      const queue = new UpdateQueue(this.options.maxQueuedUpdates);
      cleanups.push(room.subscribe(queue));
      cleanups.push(room.join(input.clientId, ownerOf(ctx)));
      const full = (): PresenceMessage => ({ update: toBase64(room!.encodeAll()), full: true, timeoutMs: this.options.timeoutMs });
      yield full();
      for (;;) {
        const next = await queue.next(stop);
        if (!next) break;
        yield next.kind === "full" ? full() : { update: next.update };
      }
      if (revoked.signal.aborted) throw revoked.signal.reason;
      if (sessionEnded?.aborted) throw sessionEnded.reason;
    } finally {
      finished.abort();
      revoked.signal.removeEventListener("abort", leave);
      leave();
      if (room?.empty) {
        room.close();
        if (this.rooms.get(room.name) === room) this.rooms.delete(room.name);
      }
      releaseSlot();
    }
  }

  /**
   * `authorize` for a join: through the access watch when there is one (its reads recorded, its
   * verdict kept current: `onRevoked` when it no longer holds), else once. FORBIDDEN if refused.
   */
  private async admit(ctx: Ctx, room: string, onRevoked: (why: Revocation) => void): Promise<AccessLease | null> {
    const authorize = this.options.authorize;
    const refused = () => new TRPCError({ code: "FORBIDDEN", message: "not allowed in this presence room" });
    if (!this.access || !this.deps.access) {
      if (!(await authorize({ ...ctx, db: undefined }, room))) throw refused();
      return null;
    }
    const key = `${room}\u0000${this.deps.access.scope(ctx)}`;
    const lease = await this.access.open(key, ctx, (db) => authorize({ ...ctx, db }, room), onRevoked);
    if (!lease) throw refused();
    return lease;
  }

  /** Files a join's lease under its clientId (for `set`); returns its release. */
  private holdLease(input: PresenceJoinInput, lease: AccessLease): () => void {
    const key = `${input.room}\u0000${input.clientId}`;
    let leases = this.leases.get(key);
    if (!leases) this.leases.set(key, (leases = new Set()));
    leases.add(lease);
    return () => {
      lease.release();
      leases.delete(lease);
      if (leases.size === 0 && this.leases.get(key) === leases) this.leases.delete(key);
    };
  }

  /** The `$presence.set` procedure's body. */
  set(ctx: Ctx, input: PresenceSetInput): { ok: true } | Promise<{ ok: true }> {
    const serialized = input.state === undefined ? undefined : JSON.stringify(input.state);
    if (serialized === undefined) throw new TRPCError({ code: "BAD_REQUEST", message: "state must be JSON" });
    if (Buffer.byteLength(serialized, "utf8") > this.options.maxStateBytes) {
      throw new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `presence state over ${this.options.maxStateBytes} bytes` });
    }
    const owner = ownerOf(ctx);
    const notJoined = () => new TRPCError({ code: "FORBIDDEN", message: "join this room with this clientId before setting its state" });
    const room = this.rooms.get(input.room);
    if (!room || !room.holds(input.clientId, owner)) throw notJoined();
    // Parsed back from its JSON: what is stored is exactly what the wire can carry.
    const apply = () => room.set(input.clientId, JSON.parse(serialized) as Value, serialized);
    // The joins' verdicts: current unless a change touching what `authorize` read is being
    // re-checked — then the set waits for that answer (a revoked member's set is refused).
    const verdicts = [...(this.leases.get(`${input.room}\u0000${input.clientId}`) ?? [])].map((lease) => lease.current());
    if (verdicts.every((v) => v === true)) {
      apply();
      return { ok: true };
    }
    return Promise.all(verdicts).then((held) => {
      if (!held.every(Boolean) || this.rooms.get(input.room) !== room || !room.holds(input.clientId, owner)) throw notJoined();
      apply();
      return { ok: true as const };
    });
  }

  /** Current states of a room (server-side reads, tests). */
  peek(room: string): Record<string, unknown> {
    return (this.rooms.get(room)?.store.getAllStates() ?? {}) as Record<string, unknown>;
  }

  stats(): PresenceStats {
    let members = 0;
    for (const room of this.rooms.values()) members += room.memberCount;
    return { rooms: this.rooms.size, members, rechecks: this.access?.counters.rechecks ?? 0 };
  }

  /**
   * Ends every join and drops every room; with a relay, tells the other nodes this node's entries
   * are gone (without one, they would expire there after the timeout).
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.access?.close();
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

/** How a join ends when its access is revoked: FORBIDDEN (for good), or a failure the client retries. */
function revocationError(why: Revocation): TRPCError {
  if (why.kind === "refused") return new TRPCError({ code: "FORBIDDEN", message: "no longer allowed in this presence room" });
  return new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "checking presence access failed; rejoin", cause: why.error });
}
