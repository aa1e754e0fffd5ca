import { VersionVector, type LoroDoc } from "loro-crdt";
import { TRPCError } from "@trpc/server";
import { AccessWatch, type AccessLease, type RecordedRun, type Revocation } from "../access/index.ts";
import type { Change, ChangeFeed, FeedEvent, FeedSubscription } from "../feed/index.ts";
import type { Logger } from "../log/index.ts";
import { SubscriberQueue } from "../queue/index.ts";
import type { ModelMeta, SchemaMeta } from "../schema/index.ts";
import type { SqlClient } from "../store/index.ts";
import { AccessRelevance } from "./accessRelevance.ts";
import { encodeBase64, encodeVersion, hasNews, notFound } from "./codec.ts";
import { fetchUpdates } from "./docStore.ts";
import type { ServerDoc, ServerDocs } from "./serverDoc.ts";
import { crdtModels, docKey, type DocTarget } from "./target.ts";
import type { CrdtUpdateMessage } from "./types.ts";

export const UPDATES_TABLE = "_tether_crdt_updates";

export interface HubDeps {
  sql: SqlClient;
  schema: SchemaMeta;
  log: Logger;
  /** The node's change feed (shared with the reactor). */
  feed: () => Promise<ChangeFeed>;
  /** The node's one copy of each document (shared with pushes and projection). */
  docs: ServerDocs;
  /** Brings the copy to the committed document (inside its `run`); null when the row is gone. */
  load: (sd: ServerDoc) => Promise<LoroDoc | null>;
  /** Whether the row is visible through `db` (the caller's policy-scoped client). */
  visible: (db: unknown, t: DocTarget) => Promise<boolean>;
  /** Whether `ctx` may update the row (visible, and its model's update policy admits it). */
  writable: (db: unknown, ctx: object, t: DocTarget) => Promise<"yes" | "hidden" | "refused">;
  /** Cached write verdicts (see `CrdtOptions.maxWriteChecks` / `writeCheckIdleMs`). */
  maxWriteChecks: number;
  writeCheckIdleMs: number;
  /** Runs a check as a caller, recording what it read (the readability watch's runner). */
  access: RecordedRun;
  /** The row changed: a projection pass checks the column for a foreign write (and absorbs it). */
  rowChanged: (sd: ServerDoc) => void;
  /** The document's last subscriber on this node left: project it now rather than later. */
  lastLeft: (sd: ServerDoc) => void;
  /** Per-subscriber bound of queued updates (see `CrdtOptions.maxQueuedStreamMessages` / `…Bytes`). */
  maxQueuedMessages: number;
  maxQueuedBytes: number;
}

/** An update waiting for its subscriber, with the version it brings the subscriber to. */
interface Queued {
  readonly message: CrdtUpdateMessage;
  readonly version: VersionVector;
  readonly bytes: number;
}

interface Subscriber {
  /** What this subscriber has been sent: its own version, then everything queued for it. */
  version: VersionVector;
  /** What it has taken off its queue: where a folded backlog starts from. */
  delivered: VersionVector;
  /** Bounded by `maxQueuedMessages` and `maxQueuedBytes` (base64 characters). */
  readonly queue: SubscriberQueue<Queued>;
  /** Its hold on "may read this row", shared with its scope's other subscribers of the document. */
  lease: AccessLease | null;
  /** Its catch-up is queued: relayed updates may follow it (never overtake it). */
  caughtUp: boolean;
}

/** One streamed document on this node: its subscribers, over the node's one copy of it. */
class HubDoc {
  readonly subscribers = new Set<Subscriber>();
  closed = false;
  constructor(readonly sd: ServerDoc) {
    sd.pins += 1;
  }

  get target(): DocTarget {
    return this.sd.target;
  }

  /** The committed copy (loaded by the first piece of work queued for it). */
  get doc(): LoroDoc {
    return this.sd.doc!;
  }

  get loaded(): boolean {
    return this.sd.doc !== null;
  }

  /** Work on this document runs one piece at a time, in feed order, with commits between. */
  run(fn: () => Promise<void> | void): Promise<void> {
    return this.sd.run(async () => {
      if (!this.closed && !this.loaded) await this.load();
      if (!this.closed) await fn();
    });
  }

  load: () => Promise<void> = async () => undefined;
}

/** What one feed transaction means for one streamed document. */
interface DocWork {
  updateIds: number[];
  rowChanged: Change | null;
  deleted: boolean;
}

/**
 * Streams documents to their subscribers on this node. Every node learns of every committed
 * update through the change feed (the update log's INSERTs are captured; their bytes are not,
 * so they are fetched by id), imports it into its copy of the document, and sends each
 * subscriber what its version lacks. A model row's DELETE ends its documents' streams with
 * NOT_FOUND; an ordinary write of the column is reconciled into the document.
 */
export class DocHub {
  private readonly docs = new Map<string, HubDoc>();
  /** Streamed documents by `model\0rowId` (a row's change finds its documents without a scan). */
  private readonly byRow = new Map<string, Set<HubDoc>>();
  private readonly modelsByTable = new Map<string, ModelMeta>();
  private subscription: FeedSubscription | null = null;
  private starting: Promise<void> | null = null;
  private closed = false;
  readonly counters = { reloads: 0, folds: 0 };
  /** Readability of each (document, scope), re-checked when a change touches what it read. */
  private readonly access: AccessWatch;
  /** What the access checks watch: not rewrites of collaborative columns (projections). */
  private readonly relevance: AccessRelevance;
  /** Write verdicts per (document, scope), held as leases on the same watch (oldest use first). */
  private readonly writers = new Map<string, WriteVerdict>();
  private writerSweep: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly deps: HubDeps) {
    for (const model of crdtModels(deps.schema)) this.modelsByTable.set(model.table, model);
    this.relevance = new AccessRelevance(crdtModels(deps.schema));
    // Fed from this hub's own feed subscription (no `feed` of its own): a fan-out then never runs
    // ahead of the verdicts of the changes before it.
    this.access = new AccessWatch({ schema: deps.schema, log: deps.log, run: deps.access });
  }

  start(): Promise<void> {
    this.starting ??= (async () => {
      const feed = await this.deps.feed();
      this.subscription = await feed.subscribe((event) => this.onFeedEvent(event));
    })();
    return this.starting;
  }

  stats(): { docs: number; subscribers: number; queuedMessages: number; queuedBytes: number; rechecks: number } {
    let subscribers = 0;
    let queuedMessages = 0;
    let queuedBytes = 0;
    for (const hd of this.docs.values()) {
      subscribers += hd.subscribers.size;
      for (const s of hd.subscribers) {
        queuedMessages += s.queue.length;
        queuedBytes += s.queue.weight;
      }
    }
    return { docs: this.docs.size, subscribers, queuedMessages, queuedBytes, rechecks: this.access.counters.rechecks };
  }

  /**
   * A subscriber's stream: first what `version` lacks, then every committed change. NOT_FOUND at
   * once if `ctx` cannot read the row; later ends when `signal` aborts, or with NOT_FOUND when the
   * row goes away or stops being readable (as soon as the change that hides it is seen).
   */
  async *subscribe(t: DocTarget, ctx: object, scope: string, version: VersionVector, signal: AbortSignal): AsyncGenerator<CrdtUpdateMessage> {
    // The feed is subscribed before the readability check and the load: every commit is then
    // either seen by them or delivered after this subscriber is registered.
    await this.start();
    if (this.closed) return;
    const queue = new SubscriberQueue<Queued>({ maxItems: this.deps.maxQueuedMessages, maxWeight: this.deps.maxQueuedBytes }, (q) => q.bytes);
    const subscriber: Subscriber = { version, delivered: version, queue, lease: null, caughtUp: false };
    subscriber.lease = await this.access.open(`${t.key}\u0000${scope}`, ctx, (db) => this.deps.visible(db, t), (why) =>
      subscriber.queue.end(revocationError(why)),
    );
    if (!subscriber.lease) throw notFound();
    if (this.closed) {
      subscriber.lease.release();
      return;
    }
    let hd = this.docs.get(t.key);
    if (!hd) {
      const fresh = new HubDoc(this.deps.docs.get(t));
      fresh.load = () => this.load(fresh);
      hd = fresh;
      this.docs.set(t.key, fresh);
      const rowKey = `${t.model.name}\u0000${t.rowId}`;
      let docsOfRow = this.byRow.get(rowKey);
      if (!docsOfRow) this.byRow.set(rowKey, (docsOfRow = new Set()));
      docsOfRow.add(fresh);
      void fresh.run(() => undefined).catch(() => undefined);
    }
    const doc = hd;
    doc.subscribers.add(subscriber);
    const onAbort = () => subscriber.queue.end();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      void doc.run(() => {
        if (doc.closed || subscriber.queue.isEnded) return;
        const current = doc.doc.oplogVersion();
        subscriber.caughtUp = true;
        this.send(doc, subscriber, encodeBase64(doc.doc.export({ mode: "update", from: subscriber.version })), current, encodeVersion(current));
      });
      if (signal.aborted) return;
      for (;;) {
        const next = await subscriber.queue.next();
        if (next.done) return;
        subscriber.delivered = next.value.version;
        yield next.value.message;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      subscriber.queue.end();
      subscriber.lease.release();
      doc.subscribers.delete(subscriber);
      if (doc.subscribers.size === 0) this.drop(doc);
    }
  }

  /**
   * The write check of a push: decided once per (document, scope) and kept while nothing the
   * check read changes (the access watch re-runs it then, and a revocation drops it), not one
   * policy-checked read per push. NOT_FOUND when the row is hidden, FORBIDDEN when its update
   * policy refuses.
   */
  async mayWrite(t: DocTarget, ctx: object, scope: string): Promise<void> {
    await this.start();
    const key = `${t.key}\u0000w\u0000${scope}`;
    let verdict = this.writers.get(key);
    if (verdict) {
      this.writers.delete(key); // most recently used last
      this.writers.set(key, verdict);
    } else {
      const fresh: WriteVerdict = { lease: null, opening: null, reason: "refused", used: Date.now() };
      verdict = fresh;
      this.writers.set(key, fresh);
      fresh.opening = this.access
        .open(key, ctx, async (db) => {
          const answer = await this.deps.writable(db, ctx, t);
          if (answer !== "yes") fresh.reason = answer;
          return answer === "yes";
        }, () => this.dropWriter(key, fresh))
        .then((lease) => (fresh.lease = lease));
      this.trimWriters();
    }
    verdict.used = Date.now();
    const reason = verdict.reason;
    const lease = verdict.lease ?? (await verdict.opening!.catch((error: unknown) => {
      this.dropWriter(key, verdict);
      throw error;
    }));
    const allowed = lease ? await lease.current() : false;
    if (allowed) return;
    this.dropWriter(key, verdict);
    const why = verdict.reason ?? reason;
    throw why === "hidden" ? notFound() : new TRPCError({ code: "FORBIDDEN", message: `update of ${t.model.name} refused by its policy` });
  }

  private dropWriter(key: string, verdict: WriteVerdict): void {
    if (this.writers.get(key) === verdict) this.writers.delete(key);
    verdict.lease?.release();
    verdict.lease = null;
  }

  private trimWriters(): void {
    for (const [key, verdict] of this.writers) {
      if (this.writers.size <= this.deps.maxWriteChecks) break;
      this.dropWriter(key, verdict);
    }
    this.writerSweep ??= setInterval(() => {
      const idle = Date.now() - this.deps.writeCheckIdleMs;
      for (const [key, verdict] of this.writers) if (verdict.used < idle && verdict.lease) this.dropWriter(key, verdict);
    }, Math.max(1_000, this.deps.writeCheckIdleMs / 2));
    this.writerSweep.unref?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.writerSweep) clearInterval(this.writerSweep);
    for (const [key, verdict] of this.writers) this.dropWriter(key, verdict);
    this.subscription?.close();
    await this.access.close();
    for (const hd of this.docs.values()) {
      for (const subscriber of hd.subscribers) subscriber.queue.end();
      if (!hd.closed) hd.sd.pins -= 1;
      hd.closed = true;
    }
    this.docs.clear();
    this.byRow.clear();
  }

  private drop(hd: HubDoc): void {
    if (!hd.closed) hd.sd.pins -= 1;
    hd.closed = true;
    this.deps.lastLeft(hd.sd);
    if (this.docs.get(hd.target.key) === hd) this.docs.delete(hd.target.key);
    const rowKey = `${hd.target.model.name}\u0000${hd.target.rowId}`;
    const docsOfRow = this.byRow.get(rowKey);
    docsOfRow?.delete(hd);
    if (docsOfRow?.size === 0) this.byRow.delete(rowKey);
  }

  private fail(hd: HubDoc, error: unknown): void {
    for (const subscriber of hd.subscribers) subscriber.queue.end(error);
    hd.subscribers.clear();
    this.drop(hd);
  }

  /** (Re)loads the committed document from the database (inside its `run`); the row gone ends every stream. */
  private async load(hd: HubDoc): Promise<void> {
    if (hd.closed) return;
    let loaded: LoroDoc | null;
    try {
      loaded = await this.deps.load(hd.sd);
    } catch (error) {
      this.deps.log.warn({ err: (error as Error).message, model: hd.target.model.name }, "crdt: loading a streamed document failed");
      this.fail(hd, error);
      return;
    }
    if (!loaded) this.fail(hd, notFound());
  }

  /**
   * Relay first: an update that passed validation and the pusher's write check goes to this
   * node's subscribers of the document now, before it is durable (its sender keeps it until
   * acked; peers merge idempotently). A subscriber whose access is being re-checked gets it with
   * the commit's fan-out instead, once the verdict is in.
   */
  relay(key: string, update: string, start: VersionVector, end: VersionVector): void {
    const hd = this.docs.get(key);
    if (!hd || hd.closed) return;
    for (const s of hd.subscribers) {
      if (!s.caughtUp || s.queue.isEnded || s.lease?.current() !== true) continue;
      if (!hasNews(end, s.version)) continue; // it has all of it (its own push echoed)
      const order = s.version.compare(start);
      // Contiguous with what it has: its version moves on (the commit's fan-out sends nothing
      // twice). Otherwise sent anyway; the fan-out later fills what lies between.
      const next = order !== undefined && order >= 0 ? merged(s.version, end) : s.version;
      this.send(hd, s, update, next, "", () => encodeVersion(next));
    }
  }

  /** A commit on this node changed the copy (inside its `run`): subscribers get what they lack. */
  async committed(sd: ServerDoc): Promise<void> {
    const hd = this.docs.get(sd.target.key);
    if (hd && hd.sd === sd) await this.fanOut(hd);
  }

  private onFeedEvent(event: FeedEvent): void {
    // First: a re-check this event calls for is due before any fan-out it precedes runs.
    this.access.observe(this.relevance.filter(event));
    if (this.docs.size === 0) return;
    if (event.type === "resync") {
      // Changes were trimmed before this node read them: rebuild every streamed document.
      for (const hd of this.docs.values()) {
        void hd.run(async () => {
          this.counters.reloads += 1;
          hd.sd.doc = null;
          await this.load(hd);
          await this.fanOut(hd);
        }).catch((error) => this.fail(hd, error));
      }
      return;
    }
    const work = new Map<HubDoc, DocWork>();
    const workOf = (hd: HubDoc) => {
      let w = work.get(hd);
      if (!w) work.set(hd, (w = { updateIds: [], rowChanged: null, deleted: false }));
      return w;
    };
    for (const change of event.changes) {
      if (change.table === UPDATES_TABLE) {
        const row = change.new;
        if (change.op !== "INSERT" || !row) continue;
        const hd = this.docs.get(docKey(String(row.model), String(row.row_id), String(row.field)));
        if (hd) workOf(hd).updateIds.push(Number(row.id));
        continue;
      }
      const model = this.modelsByTable.get(change.table);
      if (!model) continue;
      const rowId = change.op === "TRUNCATE" ? null : this.rowIdOf(model, change);
      const candidates = rowId === null ? this.docs.values() : (this.byRow.get(`${model.name}\u0000${rowId}`) ?? []);
      for (const hd of candidates) {
        if (hd.target.model !== model) continue;
        if (change.op === "DELETE" || change.op === "TRUNCATE") workOf(hd).deleted = true;
        else workOf(hd).rowChanged = change;
      }
    }
    for (const [hd, w] of work) {
      void hd.run(() => this.apply(hd, w)).catch((error) => {
        this.deps.log.warn({ err: (error as Error).message }, "crdt: delivering a document change failed");
        this.fail(hd, error);
      });
    }
  }

  private rowIdOf(model: ModelMeta, change: Change): string | null {
    const column = model.fields[model.primaryKey[0]!]?.column;
    const value = column ? (change.pk?.[column] ?? change.old?.[column] ?? change.new?.[column]) : undefined;
    return value === undefined || value === null ? null : String(value);
  }

  private async apply(hd: HubDoc, w: DocWork): Promise<void> {
    if (hd.closed) return;
    if (w.deleted) return this.fail(hd, notFound("the document's row was deleted"));
    if (w.updateIds.length > 0) await this.importUpdates(hd, w.updateIds);
    // The column changed: this node's own projection, or a foreign write. A projection pass
    // under the row lock tells them apart (by the md5 it recorded) and absorbs a foreign one.
    if (w.rowChanged) this.deps.rowChanged(hd.sd);
    await this.fanOut(hd);
  }

  private async importUpdates(hd: HubDoc, ids: number[]): Promise<void> {
    // This node's own commits, and whatever the last load covered, are in the copy already.
    const news = ids.filter((id) => id > hd.sd.through);
    if (news.length === 0) return;
    const found = await fetchUpdates(this.deps.sql, news);
    let complete = found.size === news.length;
    if (complete) {
      const status = hd.doc.importBatch(news.map((id) => found.get(id)!));
      if (status.pending) complete = false;
      else hd.sd.through = Math.max(hd.sd.through, ...news);
    }
    // An update compacted away before this node fetched it (or one whose dependencies this
    // copy lacks): the stored document has everything — and every id up to its last one, so the
    // other queued updates the compaction folded cost no further reload.
    if (!complete) {
      this.counters.reloads += 1;
      hd.sd.doc = null;
      await this.load(hd);
    }
  }

  /**
   * Sends each subscriber what it lacks, once its access verdict is current (a re-check the same
   * or an earlier feed event called for is awaited: nothing reaches a reader who lost access).
   */
  private async fanOut(hd: HubDoc): Promise<void> {
    if (hd.closed || !hd.loaded) return;
    const current = hd.doc.oplogVersion();
    const due = [...hd.subscribers].filter((s) => !s.queue.isEnded && hasNews(current, s.version));
    if (due.length === 0) return;
    const allowed = await Promise.all(due.map((s) => s.lease?.current() ?? false));
    if (hd.closed) return;
    const version = encodeVersion(current);
    const exports = new Map<string, string>();
    for (const [i, s] of due.entries()) {
      if (!allowed[i]) {
        s.queue.end(notFound());
        continue;
      }
      if (!hd.subscribers.has(s) || s.queue.isEnded) continue;
      const from = encodeVersion(s.version);
      let update = exports.get(from);
      if (update === undefined) {
        update = encodeBase64(hd.doc.export({ mode: "update", from: s.version }));
        exports.set(from, update);
      }
      this.send(hd, s, update, current, version);
    }
  }

  /**
   * Queues an update for a subscriber, within its bound: past it, the backlog (what it has not
   * taken yet) is replaced by one update from what it has taken — the same document state in
   * one message, whatever the number of edits it missed.
   */
  private send(hd: HubDoc, s: Subscriber, update: string, current: VersionVector, version: string, versionOf?: () => string): void {
    const item: Queued = { message: { update, version: versionOf ? versionOf() : version }, version: current, bytes: update.length };
    const queued = s.queue.push(item, () => {
      if (!hd.loaded) return null;
      // Folded from the committed copy: what it holds is what this subscriber now has.
      const folded = encodeBase64(hd.doc.export({ mode: "update", from: s.delivered }));
      const now = hd.doc.oplogVersion();
      return { message: { update: folded, version: encodeVersion(now) }, version: now, bytes: folded.length };
    });
    if (queued !== item) this.counters.folds += 1;
    s.version = queued.version;
  }
}

/** The per-peer maximum of two versions. */
function merged(a: VersionVector, b: VersionVector): VersionVector {
  const out = new Map(a.toJSON() as Map<`${number}`, number>);
  for (const [peer, counter] of b.toJSON() as Map<`${number}`, number>) {
    if ((out.get(peer) ?? 0) < counter) out.set(peer, counter);
  }
  return VersionVector.parseJSON(out);
}

/** A cached write check: its lease on the access watch (null while opening, or refused). */
interface WriteVerdict {
  lease: AccessLease | null;
  opening: Promise<AccessLease | null> | null;
  /** Why the check last said no. */
  reason: "hidden" | "refused";
  used: number;
}

/** How a stream ends when its reader loses access: NOT_FOUND (hidden) or a retryable failure. */
function revocationError(why: Revocation): TRPCError {
  if (why.kind === "refused") return notFound();
  return new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "checking access to the document failed; reconnect", cause: why.error });
}
