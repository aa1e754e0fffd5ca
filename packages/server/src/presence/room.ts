import { TRPCError } from "@trpc/server";
import { EphemeralStore, type Value } from "loro-crdt";
import type { UpdateQueue } from "./updateQueue.ts";

export const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

/**
 * Who holds a clientId: the user's id, or — for an anonymous caller a custom `authorize`
 * admitted — the connection's context object itself (an anonymous `set` must then come through
 * that same context: there is nothing else to tell two anonymous callers apart).
 */
export type PresenceOwner = string | object;

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

  constructor(
    readonly name: string,
    timeoutMs: number,
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
        for (const key of removed) if (this.store.get(key) === undefined) this.delete(key);
      });
    });
    // The store's own timer sweeps every timeout/2 and only after a set; sweeping every
    // timeout/4 keeps "gone within the timeout" close to true. unref: never holds a process open.
    this.sweep = setInterval(() => this.store.inner.removeOutdated(), Math.max(10, Math.floor(timeoutMs / 4)));
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
    this.muted = this.lastJson.get(clientId) === json && this.store.get(clientId) !== undefined;
    this.lastJson.set(clientId, json);
    try {
      this.store.set(clientId, state); // emits its update synchronously (checked with loro-crdt 1.17.1)
    } finally {
      this.muted = false;
    }
  }

  private delete(clientId: string): void {
    this.lastJson.delete(clientId);
    this.store.delete(clientId);
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
    clearInterval(this.sweep);
    this.stopLocal();
    this.stopEvents();
    this.store.destroy();
    this.store.inner.free();
  }
}
