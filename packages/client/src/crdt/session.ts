import { isPermanentError, trpcErrorCode as errorCode } from "../core/errors.ts";
import { decodeImportBlobMeta, LoroDoc, VersionVector, type PeerID } from "loro-crdt";
import { Backoff, type BackoffOptions } from "../core/backoff.ts";
import { ResumableStream } from "../core/resumableStream.ts";
import { DEFAULT_CRDT_PUSH, isTransportFailure, type CrdtPushOptions } from "./pushPolicy.ts";
import type { ConnectionStatusStore } from "../core/connection.ts";
import type { TransportState } from "../core/resumableStream.ts";
import { Subscribable } from "../core/subscribable.ts";
import { fromBase64, toBase64 } from "@tether/protocol";
import { Outbox } from "./outbox.ts";
import type { CrdtPersistence } from "./persistence.ts";
import { crdtKey, readUpdateMessage, type CrdtTarget, type CrdtVersionInput } from "@tether/protocol";
import type { CrdtStreamHandlers, CrdtTransport } from "./transport.ts";

/**
 * - `loading`: reading the persisted copy (IndexedDB); no document yet;
 * - `syncing`: connected, and either the server's catch-up has not arrived yet or local changes
 *   wait for the server's acknowledgement;
 * - `synced`: caught up, nothing unsent;
 * - `offline`: the stream lost its connection, a push failed for want of one, or the browser
 *   says it is offline; edits go on
 *   locally (and into the persisted outbox) and are sent when the connection is back;
 * - `error`: the server refused for good (`NOT_FOUND`: row gone or hidden; `FORBIDDEN`;
 *   `BAD_REQUEST`; `PAYLOAD_TOO_LARGE` for a single operation — larger outboxes are sent in
 *   halves): see `error`; `retry()` tries again.
 */
export type CrdtStatus = "loading" | "syncing" | "synced" | "offline" | "error";

/** An immutable snapshot per change, so `useSyncExternalStore` can compare by reference. */
export interface CrdtSessionState {
  readonly status: CrdtStatus;
  /** Local operations the server has not acknowledged (Loro ops; 0 when all is sent). */
  readonly pending: number;
  readonly error: unknown;
  /** The live document; null while loading. */
  readonly doc: LoroDoc | null;
  /** Bumped on every change of the document, local or remote: a re-render key. */
  readonly revision: number;
}

export interface CrdtDocSessionOptions {
  transport: CrdtTransport;
  /** Where the document and its outbox survive reloads; null: nowhere. */
  persistence: CrdtPersistence | null;
  /** Backoff for resubscribing and re-pushing after the connection failed. */
  retry?: BackoffOptions;
  /** Pushes in flight and retries of refusals the server says are passing (`DEFAULT_CRDT_PUSH`). */
  push?: CrdtPushOptions;
  /** Coalesces persistence writes of bursts of edits, ms. Default 50. */
  saveDelayMs?: number;
  /** The Tether client's connection: its coming back cuts retry waits short. */
  connection?: ConnectionStatusStore;
}

/** Counters for tests and diagnostics. */
export interface CrdtSessionStats {
  /** Streams opened (first subscribe and every resubscribe). */
  streams: number;
  /** Pushes sent, and their decoded update bytes in total. */
  pushes: number;
  pushedBytes: number;
  /** Decoded size of the last stream's first (catch-up) message, bytes; null before one arrived. */
  catchUpBytes: number | null;
  /** The version the last stream was opened with (base64), undefined when the doc was empty. */
  lastStreamVersion: string | undefined;
  /** `importBatch` calls for received messages (messages / imports = the batching). */
  imports: number;
  /** Messages received on streams, and the time spent importing them (ms, in total and at most once). */
  received: number;
  importMs: number;
  maxImportMs: number;
  /** Repair pushes: others' changes this client holds that the server lacked at a catch-up. */
  repairs: number;
  /** Most pushes that were in flight at once. */
  maxPushesInFlight: number;
  /** Pushes that got no answer (connection), and pushes refused with a retryable code. */
  pushFailures: number;
  pushRefusals: number;
}

/**
 * One collaborative field of one row, bound to one `LoroDoc`:
 *
 * - loads the persisted copy (snapshot + outbox) first, so offline edits of an earlier page
 *   survive and only what the server has that we lack comes down;
 * - streams `$crdt.stream` from the document's version and imports what arrives (imports never
 *   reach `subscribeLocalUpdates`, so remote changes are not echoed back);
 * - sends local commits with `$crdt.push` at once, without waiting for the pushes in flight
 *   (the server relays a push to the other editors when it arrives and acknowledges it only once
 *   durable: waiting for that ack before sending the next keystroke would make every keystroke
 *   wait for a database commit). Each push carries every unacknowledged local operation (so
 *   pushes never depend on each other, whatever order the server sees them in); at most
 *   `push.maxInFlight` at once, commits of one task go together;
 * - after a lost connection, resubscribes with its current version and re-sends the outbox
 *   (Loro imports are idempotent, so a push whose answer was lost does no harm when repeated);
 * - imports what arrives together in one `importBatch` (the server relays each push as it
 *   arrives, so bursts of small messages are the norm while others type);
 * - repairs: when a catch-up shows the server lacks changes this client holds that are not its
 *   own pending ones (relayed to it before a server was killed, from a peer that is gone), it
 *   pushes them (an ack means durable, so nothing relayed is lost while one holder remains).
 *
 * Edit through `state.doc` and call `doc.commit()` after a change: Loro reports (and this
 * session sends) committed changes only.
 */
export class CrdtDocSession extends Subscribable {
  readonly key: string;
  readonly stats: CrdtSessionStats = {
    streams: 0,
    pushes: 0,
    pushedBytes: 0,
    catchUpBytes: null,
    lastStreamVersion: undefined,
    imports: 0,
    received: 0,
    importMs: 0,
    maxImportMs: 0,
    repairs: 0,
    maxPushesInFlight: 0,
    pushFailures: 0,
    pushRefusals: 0,
  };

  private doc: LoroDoc | null = null;
  private outbox = new Outbox();
  private revision = 0;
  private snapshot: CrdtSessionState | null = null;
  /** The server refused the stream for good (row gone or hidden): no more resubscribing. */
  private streamError: unknown = null;
  /** The server refused a push for good: the outbox waits for retry(); the stream goes on. */
  private pushError: unknown = null;
  private started = false;
  private disposed = false;

  // Stream.
  private readonly stream: ResumableStream<unknown>;
  /** The current stream's connection was up: a "connecting" with an error after that is a new loss. */
  private streamConnected = false;
  private caughtUp = false;
  /** Received updates not imported yet (imported together at the end of the current tick). */
  private inbound: Array<{ bytes: Uint8Array; version: string; first: boolean }> = [];
  private inboundScheduled = false;
  /** The stream lost its connection (or failed transiently) and has not delivered since. */
  private disconnected = false;

  // Push.
  private readonly push: Required<CrdtPushOptions>;
  /** Pushes sent and not answered yet. */
  private inFlight = 0;
  /** Per peer, the op counter up to which the pushes in flight carry the outbox. */
  private readonly sentTo = new Map<PeerID, number>();
  private flushScheduled = false;
  /** The last push failed for want of a connection; the next waits for the backoff or a reconnect. */
  private pushFailing = false;
  private pushWaiting = false;
  /** Most operations per push: halved while the server answers PAYLOAD_TOO_LARGE. */
  private pushLimit = Number.POSITIVE_INFINITY;
  /** Waits after a failed connection (long: the server may be down). */
  private readonly pushRetry: Backoff;
  /** Waits after a retryable refusal from a server that answered (short and bounded). */
  private readonly pushRefusedRetry: Backoff;

  // Persistence.
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private dirty = false;
  private saving: Promise<void> | null = null;

  private readonly cleanups: Array<() => void> = [];

  constructor(
    readonly target: CrdtTarget,
    private readonly options: CrdtDocSessionOptions,
  ) {
    super();
    this.key = crdtKey(target);
    this.stream = new ResumableStream<unknown>({
      connect: (handlers) => this.connect(handlers),
      onData: (value) => {
        this.streamConnected = true;
        this.receive(value);
      },
      onError: (error, permanent) => this.streamFailed(error, permanent),
      onComplete: () => this.streamEnded(),
      onConnectionStateChange: (state) => this.connectionChanged(state),
      shouldRetry: () => !this.disposed && this.doc !== null && this.streamError === null,
      retry: options.retry,
    });
    this.pushRetry = new Backoff(options.retry);
    this.push = { ...DEFAULT_CRDT_PUSH, ...options.push };
    this.pushRefusedRetry = new Backoff(this.push.refusedRetry);
  }

  get state(): CrdtSessionState {
    return (this.snapshot ??= {
      status: this.status(),
      pending: this.outbox.size,
      error: this.streamError ?? this.pushError,
      doc: this.doc,
      revision: this.revision,
    });
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Loads the persisted copy, then subscribes and sends what is pending. Idempotent. */
  start(): void {
    if (this.started || this.disposed) return;
    this.started = true;
    const connection = this.options.connection;
    if (connection) {
      let last = connection.get();
      this.cleanups.push(
        connection.subscribe(() => {
          const now = connection.get();
          // Back online, or the socket reopened: do not sit out a backoff meant for a dead network.
          if ((now.state === "connected" && last.state !== "connected") || (now.online && !last.online)) this.wake();
          const onlineChanged = now.online !== last.online;
          last = now;
          if (onlineChanged) this.changed();
        }),
      );
    }
    void this.load();
  }

  /** Resolves with the document once loaded (rejects if the session is disposed first). */
  ready(): Promise<LoroDoc> {
    if (this.doc) return Promise.resolve(this.doc);
    if (this.disposed) return Promise.reject(new Error("CRDT session disposed before it loaded"));
    return new Promise<LoroDoc>((resolve, reject) => {
      const unsubscribe = this.subscribe(() => {
        if (this.doc) {
          unsubscribe();
          resolve(this.doc);
        } else if (this.disposed) {
          unsubscribe();
          reject(new Error("CRDT session disposed before it loaded"));
        }
      });
    });
  }

  /** Retry now instead of after the backoff; after an `error`, clear it and try again. */
  retry(): void {
    if (this.disposed) return;
    if (this.streamError !== null || this.pushError !== null) {
      const restream = this.streamError !== null;
      this.streamError = null;
      this.pushError = null;
      this.changed();
      if (restream) this.stream.start();
    }
    this.wake();
    this.flush();
  }

  /** Writes the persisted copy now (pending debounced writes included). */
  persist(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
    }
    return this.saveNow();
  }

  /** Ends the stream, stops retries and writes the persisted copy. The document stays usable. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.stream.close();
    this.pushRetry.close();
    this.pushRefusedRetry.close();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.changed();
    await this.persist();
  }

  // --- loading ---------------------------------------------------------------------------

  private async load(): Promise<void> {
    const persistence = this.options.persistence;
    let persisted: Awaited<ReturnType<CrdtPersistence["load"]>>;
    try {
      persisted = await persistence?.load(this.key);
    } catch {
      // An unreadable store (private mode, quota, a blocked upgrade): start from the server.
      persisted = undefined;
    }
    if (this.disposed) return;
    const doc = new LoroDoc();
    if (persisted?.snapshot) {
      try {
        doc.import(persisted.snapshot);
        this.outbox = new Outbox(persisted.outbox);
      } catch {
        // A corrupt copy is worth less than a clean start: the server has everything acknowledged.
        this.outbox = new Outbox();
      }
    }
    this.cleanups.push(
      doc.subscribeLocalUpdates((bytes) => this.localUpdate(bytes)),
      doc.subscribe(() => this.documentChanged()),
    );
    this.doc = doc;
    this.changed();
    this.stream.start();
    this.flush();
  }

  // --- local changes ---------------------------------------------------------------------

  private localUpdate(bytes: Uint8Array): void {
    // Only local commits land here, never imports: nothing the server sent is sent back.
    const meta = decodeImportBlobMeta(bytes, false);
    const start = meta.partialStartVersionVector;
    for (const [peer, end] of meta.partialEndVersionVector.toJSON() as Map<PeerID, number>) {
      this.outbox.add(peer, start.get(peer) ?? 0, end);
    }
    this.scheduleSave();
    this.changed();
    this.scheduleFlush();
  }

  /** Commits made in one task (an editor's transaction may commit more than once) go in one push. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private documentChanged(): void {
    this.revision += 1;
    this.scheduleSave();
    this.changed();
  }

  // --- stream ----------------------------------------------------------------------------

  private streamInput(): CrdtVersionInput {
    const version = this.doc!.oplogVersion();
    // An empty document asks for everything (no version), as the contract's default.
    return version.length() === 0 ? { ...this.target } : { ...this.target, version: toBase64(version.encode()) };
  }

  /** Opens `$crdt.stream` from the version held now (a resumed stream asks only for what is new). */
  private connect(handlers: CrdtStreamHandlers) {
    this.streamConnected = false;
    this.caughtUp = false;
    const input = this.streamInput();
    this.stats.streams += 1;
    this.stats.lastStreamVersion = input.version;
    return this.options.transport.stream(input, handlers);
  }

  private connectionChanged(state: TransportState): void {
    if (state.state === "pending") {
      this.streamConnected = true;
      return;
    }
    // Before this stream's connection was up, a "connecting" with an error is the transport
    // still trying (it reports the old error to each new subscription), not a new loss.
    if (state.state !== "connecting" || !state.error) return;
    this.setDisconnected(true);
    // The transport would resubscribe with the version we had when this stream opened;
    // a new stream (queued until the connection is back) asks from what we hold now.
    if (this.streamConnected) this.stream.restart();
  }

  private receive(value: unknown): void {
    const first = !this.caughtUp && this.inbound.length === 0;
    let message: ReturnType<typeof readUpdateMessage> = null;
    let bytes: Uint8Array | null = null;
    try {
      message = readUpdateMessage(value);
      if (message) bytes = fromBase64(message.update);
    } catch {
      bytes = null;
    }
    if (!message || !bytes) return this.receiveFailed();
    if (first) this.stats.catchUpBytes = bytes.length;
    this.inbound.push({ bytes, version: message.version, first });
    if (this.inboundScheduled) return;
    this.inboundScheduled = true;
    const generation = this.stream.generation;
    queueMicrotask(() => {
      this.inboundScheduled = false;
      const batch = this.inbound.splice(0);
      if (generation === this.stream.generation && !this.disposed) this.importInbound(batch);
    });
  }

  /** One `importBatch` for everything received in this tick. */
  private importInbound(batch: Array<{ bytes: Uint8Array; version: string; first: boolean }>): void {
    if (batch.length === 0) return;
    const doc = this.doc!;
    let imported = false;
    const started = performance.now();
    try {
      this.stats.imports += 1;
      this.stats.received += batch.length;
      // Pending = missing dependencies: a change went by unseen. Ask again from what we hold.
      imported = doc.importBatch(batch.map((m) => m.bytes)).pending == null;
    } catch {
      imported = false;
    }
    const took = performance.now() - started;
    this.stats.importMs += took;
    this.stats.maxImportMs = Math.max(this.stats.maxImportMs, took);
    if (!imported) return this.receiveFailed();
    this.stream.succeeded();
    this.caughtUp = true;
    this.disconnected = false;
    const catchUp = batch.find((m) => m.first);
    if (catchUp) {
      this.repair(catchUp.version);
      // Connected (again): what waited for the connection goes now.
      this.pushRetry.wake();
      this.flush();
    }
    this.changed();
  }

  /** An update that cannot be read or imported: drop the stream, ask again from what we hold. */
  private receiveFailed(): void {
    this.inbound = [];
    this.caughtUp = false;
    this.stream.retryLater();
  }

  /**
   * After a catch-up: what this client holds beyond the server's version that its outbox does not
   * cover (others' changes relayed to it that never became durable) goes back to the server.
   */
  private repair(serverVersion: string): void {
    const doc = this.doc!;
    let server: VersionVector;
    try {
      server = VersionVector.decode(fromBase64(serverVersion));
    } catch {
      return;
    }
    const mine = new Map(this.outbox.list().map((span) => [span.peer, span]));
    const spans: Array<{ id: { peer: PeerID; counter: number }; len: number }> = [];
    for (const [peer, end] of doc.oplogVersion().toJSON() as Map<PeerID, number>) {
      const from = server.get(peer) ?? 0;
      // Only the part below what the outbox will send anyway.
      const to = Math.min(end, mine.get(peer)?.from ?? end);
      if (to > from) spans.push({ id: { peer, counter: from }, len: to - from });
    }
    if (spans.length === 0) return;
    this.stats.repairs += 1;
    const update = doc.export({ mode: "updates-in-range", spans });
    // Best effort: if it fails, the next catch-up finds the gap again.
    this.options.transport.push({ ...this.target, update: toBase64(update) }).catch(() => undefined);
  }

  private streamFailed(error: unknown, permanent: boolean): void {
    this.caughtUp = false;
    if (permanent) {
      this.streamError = error;
      this.changed();
      return;
    }
    this.setDisconnected(true);
  }

  private streamEnded(): void {
    // The server ended the stream (shutting down, or its reactor closed): it comes back.
    this.caughtUp = false;
    this.changed();
  }

  // --- push ------------------------------------------------------------------------------

  /**
   * Sends the outbox — everything unacknowledged — unless the pushes in flight carry all of it
   * already, `push.maxInFlight` are in flight, or a retry wait runs. While PAYLOAD_TOO_LARGE
   * halves pushes, or the outbox is over `push.maxPipelinedOps`, one push at a time.
   */
  private flush(): void {
    const doc = this.doc;
    if (!doc || this.disposed || this.pushWaiting || this.pushError !== null) return;
    const pipelined = this.inFlight > 0;
    if (pipelined && (this.inFlight >= this.push.maxInFlight || Number.isFinite(this.pushLimit))) return;
    const sent = this.outbox.list(this.pushLimit);
    if (sent.length === 0) return;
    const ops = sent.reduce((sum, span) => sum + span.to - span.from, 0);
    if (pipelined && (ops > this.push.maxPipelinedOps || !sent.some((span) => span.to > (this.sentTo.get(span.peer) ?? 0)))) return;
    // One update for every unacknowledged local change, whichever page or peer made it.
    const update = doc.export({
      mode: "updates-in-range",
      spans: sent.map((span) => ({ id: { peer: span.peer, counter: span.from }, len: span.to - span.from })),
    });
    this.inFlight += 1;
    for (const span of sent) this.sentTo.set(span.peer, Math.max(this.sentTo.get(span.peer) ?? 0, span.to));
    this.stats.pushes += 1;
    this.stats.pushedBytes += update.length;
    this.stats.maxPushesInFlight = Math.max(this.stats.maxPushesInFlight, this.inFlight);
    this.options.transport.push({ ...this.target, update: toBase64(update) }).then(
      () => {
        this.inFlight -= 1;
        this.outbox.acknowledge(sent);
        this.pushRetry.reset();
        this.pushRefusedRetry.reset();
        this.pushFailing = false;
        if (this.outbox.size === 0) this.pushLimit = Number.POSITIVE_INFINITY;
        this.dirty = true;
        if (this.disposed) void this.saveNow();
        else this.scheduleSave();
        this.changed();
        this.flush();
      },
      (error: unknown) => {
        this.inFlight -= 1;
        // What it carried is not known to be stored: the next push carries it again.
        this.sentTo.clear();
        if (this.disposed) return;
        if (errorCode(error) === "PAYLOAD_TOO_LARGE" && ops > 1) {
          // Too much at once (a long offline session, a big paste): send it in halves.
          this.pushLimit = Math.min(this.pushLimit, Math.ceil(ops / 2));
          this.flush();
          return;
        }
        if (isPermanentError(error)) {
          // The outbox stays (persisted): the app may fix the cause and call retry().
          this.pushError = error;
          this.changed();
          return;
        }
        if (this.pushWaiting) return; // another failed push is waiting already
        this.pushWaiting = true;
        // No answer: the connection's backoff (the server may be down for a while). An answer
        // (CONFLICT, SERVICE_UNAVAILABLE, TOO_MANY_REQUESTS…): the server is there and says it
        // passes, so try again soon — the connection's long backoff would hold every keystroke.
        const transport = isTransportFailure(error);
        if (transport) {
          this.pushFailing = true;
          this.stats.pushFailures += 1;
        } else this.stats.pushRefusals += 1;
        this.changed();
        void (transport ? this.pushRetry : this.pushRefusedRetry).wait().then((go) => {
          this.pushWaiting = false;
          if (go) this.flush();
        });
      },
    );
  }

  // --- persistence -----------------------------------------------------------------------

  private scheduleSave(): void {
    if (!this.options.persistence || !this.doc) return;
    this.dirty = true;
    if (this.saveTimer || this.disposed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.saveNow();
    }, this.options.saveDelayMs ?? 50);
  }

  private saveNow(): Promise<void> {
    const persistence = this.options.persistence;
    const doc = this.doc;
    if (!persistence || !doc) return Promise.resolve();
    // One write at a time, always of the latest state: the last write wins, and it is ours.
    this.saving ??= (async () => {
      try {
        while (this.dirty) {
          this.dirty = false;
          try {
            await persistence.save(this.key, { snapshot: doc.export({ mode: "snapshot" }), outbox: this.outbox.list() });
          } catch {
            // Quota or a closed database: the document lives on in memory and on the server.
          }
        }
      } finally {
        this.saving = null;
      }
    })();
    return this.saving;
  }

  // --- state -----------------------------------------------------------------------------

  private status(): CrdtStatus {
    if (this.streamError !== null || this.pushError !== null) return "error";
    if (!this.doc) return "loading";
    // The browser's own word counts too: it knows before a socket times out.
    if (this.disconnected || this.pushFailing || this.options.connection?.get().online === false) return "offline";
    if (!this.caughtUp || this.outbox.size > 0) return "syncing";
    return "synced";
  }

  private setDisconnected(value: boolean): void {
    if (this.disconnected === value) return;
    this.disconnected = value;
    this.changed();
  }

  private wake(): void {
    this.stream.wake();
    this.pushRetry.wake();
    this.pushRefusedRetry.wake();
  }

  private changed(): void {
    this.snapshot = null;
    for (const listener of this.listeners) listener();
  }
}
