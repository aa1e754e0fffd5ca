import { LoroDoc, VersionVector } from "loro-crdt";
import { TRPCError } from "@trpc/server";
import { AccessWatch, type AccessLease, type RecordedRun, type Revocation } from "../access/index.ts";
import type { Change, ChangeFeed, FeedEvent, FeedSubscription } from "../feed/index.ts";
import type { Logger } from "../log/index.ts";
import { AsyncQueue } from "../reactor/index.ts";
import type { ModelMeta, SchemaMeta } from "../schema/index.ts";
import type { SqlClient } from "../store/index.ts";
import { encodeBase64, encodeVersion, hasNews, notFound } from "./codec.ts";
import { fetchUpdates } from "./docStore.ts";
import { columnMatches, crdtModels, docKey, type DocTarget } from "./target.ts";
import type { CrdtUpdateMessage } from "./types.ts";

export const UPDATES_TABLE = "_tether_crdt_updates";

export interface HubDeps {
  sql: SqlClient;
  schema: SchemaMeta;
  log: Logger;
  /** The node's change feed (shared with the reactor). */
  feed: () => Promise<ChangeFeed>;
  /** The committed document, reconciled with its column; null when the row is gone. */
  read: (t: DocTarget) => Promise<LoroDoc | null>;
  /** Whether the row is visible through `db` (the caller's policy-scoped client). */
  visible: (db: unknown, t: DocTarget) => Promise<boolean>;
  /** Runs a check as a caller, recording what it read (the readability watch's runner). */
  access: RecordedRun;
  /** Brings the document in line with a column something else wrote (own transaction). */
  reconcile: (t: DocTarget) => Promise<void>;
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
  /** Base64 characters waiting in its queue. */
  queuedBytes: number;
  readonly queue: AsyncQueue<Queued>;
  /** Its hold on "may read this row", shared with its scope's other subscribers of the document. */
  lease: AccessLease | null;
}

/** One streamed document on this node: its committed state and its subscribers. */
class HubDoc {
  doc = new LoroDoc();
  readonly subscribers = new Set<Subscriber>();
  private chain: Promise<void> = Promise.resolve();
  closed = false;
  constructor(readonly target: DocTarget) {}

  /** Work on this document runs one piece at a time, in feed order. */
  run(fn: () => Promise<void> | void): Promise<void> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
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

  constructor(private readonly deps: HubDeps) {
    for (const model of crdtModels(deps.schema)) this.modelsByTable.set(model.table, model);
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
        queuedBytes += s.queuedBytes;
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
    const subscriber: Subscriber = { version, delivered: version, queuedBytes: 0, queue: new AsyncQueue<Queued>(), lease: null };
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
      const fresh = new HubDoc(t);
      hd = fresh;
      this.docs.set(t.key, fresh);
      const rowKey = `${t.model.name}\u0000${t.rowId}`;
      let docsOfRow = this.byRow.get(rowKey);
      if (!docsOfRow) this.byRow.set(rowKey, (docsOfRow = new Set()));
      docsOfRow.add(fresh);
      void fresh.run(() => this.load(fresh)).catch(() => undefined);
    }
    const doc = hd;
    doc.subscribers.add(subscriber);
    const onAbort = () => subscriber.queue.end();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      void doc.run(() => {
        if (doc.closed || subscriber.queue.isEnded) return;
        const current = doc.doc.oplogVersion();
        this.send(doc, subscriber, encodeBase64(doc.doc.export({ mode: "update", from: subscriber.version })), current, encodeVersion(current));
      });
      if (signal.aborted) return;
      for (;;) {
        const next = await subscriber.queue.next();
        if (next.done) return;
        subscriber.delivered = next.value.version;
        subscriber.queuedBytes -= next.value.bytes;
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

  async close(): Promise<void> {
    this.closed = true;
    this.subscription?.close();
    await this.access.close();
    for (const hd of this.docs.values()) {
      for (const subscriber of hd.subscribers) subscriber.queue.end();
      hd.closed = true;
    }
    this.docs.clear();
    this.byRow.clear();
  }

  private drop(hd: HubDoc): void {
    hd.closed = true;
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

  /** (Re)loads the committed document from the database; the row gone ends every stream. */
  private async load(hd: HubDoc): Promise<void> {
    if (hd.closed) return;
    let loaded: LoroDoc | null;
    try {
      loaded = await this.deps.read(hd.target);
    } catch (error) {
      this.deps.log.warn({ err: (error as Error).message, model: hd.target.model.name }, "crdt: loading a streamed document failed");
      this.fail(hd, error);
      return;
    }
    if (!loaded) return this.fail(hd, notFound());
    // Everything the old copy had is committed, so it is in the loaded one too.
    hd.doc = loaded;
  }

  private onFeedEvent(event: FeedEvent): void {
    // First: a re-check this event calls for is due before any fan-out it precedes runs.
    this.access.observe(event);
    if (this.docs.size === 0) return;
    if (event.type === "resync") {
      // Changes were trimmed before this node read them: rebuild every streamed document.
      for (const hd of this.docs.values()) {
        void hd.run(async () => {
          this.counters.reloads += 1;
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
    if (w.rowChanged) {
      const t = hd.target;
      const column = t.field.column!;
      const known = !w.rowChanged.omitted.includes(column) && w.rowChanged.new !== null && column in w.rowChanged.new;
      // A column this node's copy does not project was written by something other than a push
      // (or this copy lags): reconciling under the row lock decides, and logs an edit if needed.
      if (!known || !columnMatches(t, hd.doc, w.rowChanged.new![column])) {
        void this.deps.reconcile(t).catch((error) =>
          this.deps.log.warn({ err: (error as Error).message, model: t.model.name }, "crdt: reconciling a document with its column failed"),
        );
      }
    }
    await this.fanOut(hd);
  }

  private async importUpdates(hd: HubDoc, ids: number[]): Promise<void> {
    const found = await fetchUpdates(this.deps.sql, ids);
    let complete = found.size === ids.length;
    if (complete) {
      for (const id of ids) {
        const status = hd.doc.import(found.get(id)!);
        if (status.pending) complete = false;
      }
    }
    // An update compacted away before this node fetched it (or one whose dependencies this
    // copy lacks): the stored document has everything.
    if (!complete) {
      this.counters.reloads += 1;
      await this.load(hd);
    }
  }

  /**
   * Sends each subscriber what it lacks, once its access verdict is current (a re-check the same
   * or an earlier feed event called for is awaited: nothing reaches a reader who lost access).
   */
  private async fanOut(hd: HubDoc): Promise<void> {
    if (hd.closed) return;
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
  private send(hd: HubDoc, s: Subscriber, update: string, current: VersionVector, version: string): void {
    let bytes = update.length;
    const full = s.queue.length >= this.deps.maxQueuedMessages || s.queuedBytes + bytes > this.deps.maxQueuedBytes;
    if (full && s.queue.length > 0) {
      s.queue.clear();
      s.queuedBytes = 0;
      update = encodeBase64(hd.doc.export({ mode: "update", from: s.delivered }));
      bytes = update.length;
      this.counters.folds += 1;
    }
    s.queue.push({ message: { update, version }, version: current, bytes });
    s.queuedBytes += bytes;
    s.version = current;
  }
}

/** How a stream ends when its reader loses access: NOT_FOUND (hidden) or a retryable failure. */
function revocationError(why: Revocation): TRPCError {
  if (why.kind === "refused") return notFound();
  return new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "checking access to the document failed; reconnect", cause: why.error });
}
