import { TRPCError } from "@trpc/server";
import { EphemeralStore, type Value } from "loro-crdt";
import { toBase64 } from "@tether/protocol";
import type { UpdateQueue } from "./updateQueue.ts";

/**
 * Who holds a clientId: the user's id, or — for an anonymous caller a custom `authorize`
 * admitted — the connection's context object itself (an anonymous `set` must then come through
 * that same context: there is nothing else to tell two anonymous callers apart).
 */
export type PresenceOwner = string | object;

/**
 * Where a room's own changes go besides its subscribers: the cross-node relay (relay.ts). Only
 * entries held by a join on this node are relayed; entries applied from other nodes never are.
 */
export interface RoomRelay {
  set(room: string, clientId: string, json: string): void;
  delete(room: string, clientId: string): void;
}

/** An entry another node owns: which node, and whether that node has confirmed it since our listener last reconnected. */
interface RemoteEntry {
  node: string;
  confirmed: boolean;
}

interface Member {
  owner: PresenceOwner;
  /** Open joins holding this clientId (a reconnecting client's new join may start before its old one ends). */
  joins: number;
}

/**
 * One room: an `EphemeralStore` whose keys are clientIds, the members holding them, and the join
 * subscriptions it broadcasts to. Every change is made here (server-side `set`/`delete`), so each
 * entry's timestamp comes from this one clock and clients never compare their clocks with it.
 */
export class PresenceRoom {
  readonly store: EphemeralStore<Record<string, Value>>;
  private readonly members = new Map<string, Member>();
  private readonly subscribers = new Set<UpdateQueue>();
  private readonly stopLocal: () => void;
  private readonly stopEvents: () => void;
  private readonly sweep: ReturnType<typeof setInterval>;
  private closed = false;
  /** Each entry's JSON as last set, to tell a refresh from a change. */
  private readonly lastJson = new Map<string, string>();
  /** Set while refreshing an unchanged entry: its timestamp moves, nobody needs to hear of it. */
  private muted = false;
  /**
   * Entries owned by other nodes (multi-node presence). Their timestamps here are refreshed by
   * their owner node's heartbeat, so this store's own expiry drops them when that node goes
   * silent; otherwise only their owner's relayed deletion removes them.
   */
  private readonly remote = new Map<string, RemoteEntry>();
  /** When each key was last written (ms), to keep two writes of one key out of the same millisecond. */
  private readonly writtenAt = new Map<string, number>();

  constructor(
    readonly name: string,
    timeoutMs: number,
    private readonly relay: RoomRelay | null = null,
  ) {
    this.store = new EphemeralStore(timeoutMs);
    // Every local set/delete is encoded for that key only: that is the incremental update.
    this.stopLocal = this.store.subscribeLocalUpdates((bytes) => {
      if (this.muted || this.subscribers.size === 0) return;
      const update = toBase64(bytes);
      for (const queue of this.subscribers) queue.push(update);
    });
    // An expired entry simply vanishes from the store, and an expiry is not a local update:
    // write a deletion for it so subscribers hear of it too. Deferred: the store is still inside
    // its own callback here.
    this.stopEvents = this.store.subscribe((event) => {
      if (event.by !== "timeout" || event.removed.length === 0) return;
      const removed = [...event.removed];
      queueMicrotask(() => {
        if (this.closed) return;
        for (const key of removed) {
          if (this.store.get(key) !== undefined) continue;
          // A remote entry expires here only because its owner node went silent: not ours to relay.
          if (this.remote.delete(key)) this.deleteQuietly(key);
          else this.delete(key);
        }
      });
    });
    // The store's own timer sweeps every timeout/2 and only after a set; sweeping every
    // timeout/4 keeps "gone within the timeout" close to true. unref: never holds a process open.
    this.sweep = setInterval(() => {
      this.store.inner.removeOutdated();
      const past = Date.now() - 1;
      for (const [key, at] of this.writtenAt) if (at < past) this.writtenAt.delete(key);
    }, Math.max(10, Math.floor(timeoutMs / 4)));
    this.sweep.unref?.();
  }

  /** Takes `clientId` for `owner` (FORBIDDEN when someone else holds it). Returns its release. */
  join(clientId: string, owner: PresenceOwner): () => void {
    const member = this.members.get(clientId);
    if (member && member.owner !== owner) {
      throw new TRPCError({ code: "FORBIDDEN", message: "this clientId is held by another user in this room" });
    }
    if (member) member.joins += 1;
    else this.members.set(clientId, { owner, joins: 1 });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const held = this.members.get(clientId);
      if (!held) return;
      held.joins -= 1;
      if (held.joins > 0) return;
      this.members.delete(clientId);
      // The last join of this client ended (it left, or its connection dropped): tell the others.
      if (!this.closed) this.delete(clientId);
    };
  }

  /** Whether `owner` holds an open join of `clientId` here. */
  holds(clientId: string, owner: PresenceOwner): boolean {
    return this.members.get(clientId)?.owner === owner;
  }

  /**
   * Sets (or refreshes) an entry. A refresh with the same state is not broadcast: clients keep
   * entries until the server says otherwise, so only changes, leaves and expiries are news —
   * heartbeats cost O(members), not O(members²).
   */
  set(clientId: string, state: Value, json: string): void {
    // A local join's set takes the entry over from any other node that had it (a client that
    // reconnected through another node).
    this.remote.delete(clientId);
    const changed = this.write(clientId, state, json);
    if (changed) this.relay?.set(this.name, clientId, json);
  }

  /** Writes an entry; a same-state rewrite only moves its timestamp (not broadcast). True if it changed. */
  private write(clientId: string, state: Value, json: string): boolean {
    this.muted = this.lastJson.get(clientId) === json && this.store.get(clientId) !== undefined;
    const changed = !this.muted;
    this.lastJson.set(clientId, json);
    this.spaceWrite(clientId);
    try {
      this.store.set(clientId, state); // emits its update synchronously (checked with loro-crdt 1.17.1)
    } finally {
      this.muted = false;
      this.written(clientId);
    }
    return changed;
  }

  /** Deletes a local entry (leave, expiry) and relays the deletion. */
  private delete(clientId: string): void {
    this.deleteQuietly(clientId);
    this.relay?.delete(this.name, clientId);
  }

  private deleteQuietly(clientId: string): void {
    this.lastJson.delete(clientId);
    this.spaceWrite(clientId);
    this.store.delete(clientId);
    this.written(clientId);
  }

  /**
   * An EphemeralStore applies an entry only if its timestamp (the writer's `Date.now()`) is newer
   * than the one it has: a second write of a key within the same millisecond would be dropped by
   * every client (checked with loro-crdt 1.17.1). Such a write waits for the next millisecond —
   * at most 1 ms, and only for one key written twice that fast (remote changes applied back to
   * back, a batch of sets).
   */
  private spaceWrite(clientId: string): void {
    const last = this.writtenAt.get(clientId);
    if (last === undefined) return;
    // Only within the same millisecond: a clock stepped back (NTP) must not stall the event loop.
    if (Date.now() >= last) while (Date.now() <= last);
  }

  /**
   * Noted after the write: the store reads the clock inside it, and a millisecond may end while
   * it encodes a big state, so only a reading taken after it bounds the timestamp it used.
   */
  private written(clientId: string): void {
    this.writtenAt.set(clientId, Date.now());
  }

  /**
   * Another node's change of an entry it owns (`json` undefined: deleted). Ignored for a clientId
   * a join on this node holds (this node owns it), and a deletion only counts from the node that
   * last set the entry.
   */
  applyRemote(node: string, clientId: string, json: string | undefined): void {
    if (this.closed || this.members.has(clientId)) return;
    if (json === undefined) {
      if (this.remote.get(clientId)?.node !== node) return;
      this.remote.delete(clientId);
      this.deleteQuietly(clientId);
      return;
    }
    this.remote.set(clientId, { node, confirmed: true });
    this.write(clientId, JSON.parse(json) as Value, json);
  }

  /**
   * `node`'s complete list of its entries here (its answer to a sync request): sets them, and
   * deletes the entries this room still had from that node but it no longer has.
   */
  applyRemoteAll(node: string, entries: Record<string, string>): void {
    for (const [clientId, entry] of [...this.remote]) {
      if (entry.node === node && !(clientId in entries)) this.applyRemote(node, clientId, undefined);
    }
    for (const [clientId, json] of Object.entries(entries)) this.applyRemote(node, clientId, json);
  }

  /** `node` is alive: its entries here stay (their timestamps move; nothing is broadcast). */
  refreshRemote(node: string): void {
    if (this.closed) return;
    for (const [clientId, entry] of this.remote) {
      if (entry.node !== node || !entry.confirmed) continue;
      const json = this.lastJson.get(clientId);
      const state = this.store.get(clientId);
      if (json !== undefined && state !== undefined) this.write(clientId, state, json);
    }
  }

  /** `node` left for good (closed): its entries go now. */
  dropRemote(node: string): void {
    for (const [clientId, entry] of [...this.remote]) if (entry.node === node) this.applyRemote(node, clientId, undefined);
  }

  /**
   * After our listener reconnected, deletions may have been missed: remote entries are kept only
   * if their owner confirms them again (its sync answer); the others expire on their own.
   */
  unconfirmRemote(): void {
    for (const entry of this.remote.values()) entry.confirmed = false;
  }

  /** The entries held by joins on this node, as JSON (the sync answer). */
  ownEntries(): Record<string, string> {
    const entries: Record<string, string> = {};
    for (const clientId of this.members.keys()) {
      if (this.remote.has(clientId)) continue; // joined here, but not set here yet
      const json = this.lastJson.get(clientId);
      if (json !== undefined && this.store.get(clientId) !== undefined) entries[clientId] = json;
    }
    return entries;
  }

  subscribe(queue: UpdateQueue): () => void {
    this.subscribers.add(queue);
    return () => {
      this.subscribers.delete(queue);
    };
  }

  /** The whole room, for a (re)joining subscriber. */
  encodeAll(): Uint8Array {
    return this.store.encodeAll();
  }

  get empty(): boolean {
    return this.members.size === 0 && this.subscribers.size === 0;
  }

  get memberCount(): number {
    return this.members.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const queue of this.subscribers) queue.end();
    this.subscribers.clear();
    this.members.clear();
    this.remote.clear();
    this.writtenAt.clear();
    clearInterval(this.sweep);
    this.stopLocal();
    this.stopEvents();
    this.store.destroy();
    this.store.inner.free();
  }
}
