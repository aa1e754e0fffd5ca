import { isPermanentError, trpcErrorCode } from "../core/errors.ts";
import { EphemeralStore, type Value } from "loro-crdt";
import type { BackoffOptions } from "../core/backoff.ts";
import { ResumableStream, type StreamHandlers, type TransportState, type Unsubscribable } from "../core/resumableStream.ts";
import { Subscribable } from "../core/subscribable.ts";
import { fromBase64 } from "@tether/protocol";
import type { PresenceJoinInput, PresenceMessage, PresenceSetInput } from "@tether/protocol";

/**
 * - `idle`: not joined yet;
 * - `joining`: join sent, the room's first message not received;
 * - `joined`: in the room, peers are current;
 * - `reconnecting`: the connection dropped or the stream ended; peers are the last known ones
 *   (cleared if it lasts longer than the entry timeout) until the rejoin's first message;
 * - `error`: refused for good (FORBIDDEN room, signed out…): see `error`;
 * - `left`: `leave()` was called.
 */
export type PresenceStatus = "idle" | "joining" | "joined" | "reconnecting" | "error" | "left";

export interface PresencePeer<State> {
  readonly clientId: string;
  readonly state: State;
  /** This tab (its state is the local one, shown at once, before the server echoes it). */
  readonly self: boolean;
}

/** Immutable per change (peers keep their identity while their state is unchanged). */
export interface PresenceSnapshot<State> {
  readonly status: PresenceStatus;
  /** This tab first (when it has a state), then the others ordered by clientId. */
  readonly peers: readonly PresencePeer<State>[];
  /** Why the join was refused, or why the last state was not accepted (e.g. PAYLOAD_TOO_LARGE). */
  readonly error: unknown;
}

export type PresenceJoinHandlers = StreamHandlers<PresenceMessage>;

/** How a room reaches the server: `$presence.join` / `$presence.set` (see `presenceTransportOf`). */
export interface PresenceTransport {
  join(input: PresenceJoinInput, handlers: PresenceJoinHandlers): Unsubscribable;
  set(input: PresenceSetInput): Promise<unknown>;
}

export interface PresenceRoomOptions<State> {
  room: string;
  clientId: string;
  /** This tab's state to announce once joined; none: be in the room without an entry (observer). */
  initialState?: State;
  /** Rejoining after the stream failed or ended. Default 250 ms doubling to 30 s. */
  retry?: BackoffOptions;
}

/** Longest timeout Loro's store accepts (its timer runs every timeout/2, in a 32-bit delay). */
const NEVER_MS = 2 ** 31 - 1;
/** Until the server's first message says otherwise (it is the server's default too). */
const DEFAULT_TIMEOUT_MS = 30_000;

/** Codes retrying cannot fix: those of live queries, and the rooms-per-connection limit. */
const isPermanent = (error: unknown) => isPermanentError(error, ["TOO_MANY_REQUESTS"]);
const codeOf = (error: unknown) => trpcErrorCode(error) ?? null;

/**
 * One tab in one presence room: a local Loro `EphemeralStore` fed by `$presence.join`, and this
 * tab's own state sent with `$presence.set` — after every (re)join, whenever it changes (one
 * request in flight, latest wins, so a moving cursor cannot pile up requests), and every
 * timeout/3 so the server does not expire it.
 *
 * The local store only ever applies what the server sent and never expires anything itself:
 * entries carry the server's timestamps, and a browser whose clock is off by more than the timeout
 * would otherwise drop (or keep) them wrongly. The server broadcasts leaves and expiries instead.
 */
export class PresenceRoom<State> extends Subscribable {
  readonly room: string;
  readonly clientId: string;
  private state: State | undefined;
  private remote = new EphemeralStore(NEVER_MS);
  private snapshot: PresenceSnapshot<State>;
  private status: PresenceStatus = "idle";
  private error: unknown = null;
  private readonly stream: ResumableStream<PresenceMessage>;
  private timeoutMs = DEFAULT_TIMEOUT_MS;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private staleTimer: ReturnType<typeof setTimeout> | null = null;
  private dirty = false;
  private sending = false;
  /** Reused peer objects, so an unchanged peer keeps its identity (and React skips it). */
  private readonly peerCache = new Map<string, { json: string; peer: PresencePeer<State> }>();

  constructor(
    private readonly transport: PresenceTransport,
    options: PresenceRoomOptions<State>,
  ) {
    super();
    this.room = options.room;
    this.clientId = options.clientId;
    this.state = options.initialState;
    this.stream = new ResumableStream<PresenceMessage>({
      connect: (handlers) => this.connect(handlers),
      onData: (message) => this.receive(message),
      onError: (error, permanent) => this.failed(error, permanent),
      // The server ended the stream (shutting down, or the room closed): come back.
      onComplete: () => this.lost(),
      onConnectionStateChange: (state) => this.connectionChanged(state),
      isPermanent,
      shouldRetry: () => this.status !== "left",
      retry: options.retry,
    });
    this.snapshot = { status: "idle", peers: [], error: null };
    this.recompute();
  }

  get(): PresenceSnapshot<State> {
    return this.snapshot;
  }

  /** This tab's current state (local: set at once, sent when joined). */
  getState(): State | undefined {
    return this.state;
  }

  /** Joins (idempotent); status goes `joining` → `joined`. */
  join(): void {
    if (this.status !== "left") this.stream.start();
  }

  /** Replaces this tab's state: shown locally at once, sent to the room when joined. */
  setState(next: State | ((previous: State | undefined) => State)): void {
    if (this.status === "left") return;
    this.state = typeof next === "function" ? (next as (previous: State | undefined) => State)(this.state) : next;
    this.recompute();
    this.dirty = true;
    this.flush();
  }

  /** Leaves the room: the server deletes this tab's entry and tells the others. Final. */
  leave(): void {
    if (this.status === "left") return;
    this.stream.close();
    this.stopHeartbeat();
    this.clearStaleTimer();
    this.resetRemote();
    this.setStatus("left");
  }

  private connect(handlers: PresenceJoinHandlers): Unsubscribable {
    if (this.status !== "reconnecting") this.setStatus("joining");
    return this.transport.join({ room: this.room, clientId: this.clientId }, handlers);
  }

  private connectionChanged(state: TransportState): void {
    // The socket dropped: the transport reconnects and resubscribes by itself.
    if (state.state === "connecting" && this.status === "joined") this.lost();
  }

  private receive(message: PresenceMessage): void {
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(message.update);
    } catch {
      return; // not ours to crash on; the next full message repairs the view
    }
    if (message.full) {
      // A (re)join or a dropped backlog: this is the whole room, nothing else is current.
      this.resetRemote();
      if (message.timeoutMs && message.timeoutMs > 0 && message.timeoutMs !== this.timeoutMs) {
        this.timeoutMs = message.timeoutMs;
        this.stopHeartbeat();
      }
      this.clearStaleTimer();
      this.stream.succeeded();
      this.error = null;
      this.status = "joined";
      this.startHeartbeat();
      // The server has no entry for a new join: announce ourselves.
      this.dirty = true;
    }
    this.remote.apply(bytes);
    this.recompute();
    this.flush();
  }

  private failed(error: unknown, permanent: boolean): void {
    if (permanent) {
      this.error = error;
      this.stopHeartbeat();
      this.setStatus("error");
      return;
    }
    this.lost();
  }

  /** Connection lost: say so; forget the peers if it lasts longer than they would live. */
  private lost(): void {
    if (this.status === "left" || this.status === "error") return;
    if (!this.staleTimer) {
      this.staleTimer = setTimeout(() => {
        this.staleTimer = null;
        if (this.status !== "reconnecting") return;
        this.resetRemote();
        this.recompute();
      }, this.timeoutMs);
    }
    this.setStatus("reconnecting");
  }

  /** Sends the state if it changed (or a refresh is due); one request at a time, latest wins. */
  private flush(): void {
    if (this.sending || !this.dirty || this.status !== "joined" || this.state === undefined) return;
    this.dirty = false;
    this.sending = true;
    const state = this.state;
    this.transport.set({ room: this.room, clientId: this.clientId, state }).then(
      () => {
        if (this.error !== null && this.status === "joined") {
          this.error = null;
          this.recompute();
        }
      },
      (error: unknown) => {
        // FORBIDDEN: the server does not (or no longer) know our join — a reconnect raced this
        // request; the rejoin's first message sends the state again. Anything else is news.
        if (codeOf(error) === "FORBIDDEN" || this.status === "left") return;
        this.error = error;
        this.recompute();
      },
    ).finally(() => {
      this.sending = false;
      this.flush();
    });
  }

  /** An empty store (no timer runs until something is applied); the old one's memory freed. */
  private resetRemote(): void {
    this.remote.destroy();
    this.remote.inner.free();
    this.remote = new EphemeralStore(NEVER_MS);
  }

  private startHeartbeat(): void {
    if (this.heartbeat) return;
    // Three chances per timeout: one lost refresh never expires a live tab.
    this.heartbeat = setInterval(() => {
      this.dirty = true;
      this.flush();
    }, Math.max(10, Math.floor(this.timeoutMs / 3)));
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private clearStaleTimer(): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.staleTimer = null;
  }

  private setStatus(status: PresenceStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.recompute();
  }

  /** A new snapshot when something visible changed; listeners hear of it. */
  private recompute(): void {
    const peers: PresencePeer<State>[] = [];
    const seen = new Set<string>();
    const peer = (clientId: string, state: State, self: boolean) => {
      const key = self ? `self:${clientId}` : clientId;
      seen.add(key);
      const json = JSON.stringify(state) ?? "undefined";
      const cached = this.peerCache.get(key);
      if (cached && cached.json === json) return cached.peer;
      const made: PresencePeer<State> = { clientId, state, self };
      this.peerCache.set(key, { json, peer: made });
      return made;
    };
    if (this.state !== undefined) peers.push(peer(this.clientId, this.state, true));
    const states = this.remote.getAllStates() as Record<string, Value>;
    for (const clientId of Object.keys(states).sort()) {
      if (clientId === this.clientId) continue; // our own echo: the local state is newer
      peers.push(peer(clientId, states[clientId] as State, false));
    }
    for (const key of this.peerCache.keys()) if (!seen.has(key)) this.peerCache.delete(key);

    const previous = this.snapshot;
    const samePeers = previous.peers.length === peers.length && previous.peers.every((p, i) => p === peers[i]);
    if (samePeers && previous.status === this.status && previous.error === this.error) return;
    this.snapshot = { status: this.status, peers: samePeers ? previous.peers : peers, error: this.error };
    for (const listener of this.listeners) listener();
  }
}
