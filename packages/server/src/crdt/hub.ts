import { LoroDoc, VersionVector } from "loro-crdt";
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
  /** Whether `ctx` may still read the row (its read policy, through the policy-scoped client). */
  readable: (ctx: object, t: DocTarget) => Promise<boolean>;
  /** Brings the document in line with a column something else wrote (own transaction). */
  reconcile: (t: DocTarget) => Promise<void>;
}

interface Subscriber {
  readonly ctx: object;
  /** Subscribers of one scope (user) share one readability check. */
  readonly scope: string;
  /** What this subscriber has: its own version, then everything sent to it. */
  version: VersionVector;
  readonly queue: AsyncQueue<CrdtUpdateMessage>;
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
  readonly counters = { reloads: 0 };

  constructor(private readonly deps: HubDeps) {
    for (const model of crdtModels(deps.schema)) this.modelsByTable.set(model.table, model);
  }

  start(): Promise<void> {
    this.starting ??= (async () => {
      const feed = await this.deps.feed();
      this.subscription = await feed.subscribe((event) => this.onFeedEvent(event));
    })();
    return this.starting;
  }

  stats(): { docs: number; subscribers: number } {
    let subscribers = 0;
    for (const hd of this.docs.values()) subscribers += hd.subscribers.size;
    return { docs: this.docs.size, subscribers };
  }

  /**
   * A subscriber's stream: first what `version` lacks, then every committed change. Ends when
   * `signal` aborts, or with NOT_FOUND when the row goes away or stops being readable.
   */
  async *subscribe(t: DocTarget, ctx: object, scope: string, version: VersionVector, signal: AbortSignal): AsyncGenerator<CrdtUpdateMessage> {
    // The feed is subscribed before the document is loaded: every commit is then either in the
    // load or delivered after this subscriber is registered.
    await this.start();
    if (this.closed) return;
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
    const subscriber: Subscriber = { ctx, scope, version, queue: new AsyncQueue<CrdtUpdateMessage>() };
    doc.subscribers.add(subscriber);
    const onAbort = () => subscriber.queue.end();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      void doc.run(() => {
        if (doc.closed || subscriber.queue.isEnded) return;
        const current = doc.doc.oplogVersion();
        subscriber.queue.push({ update: encodeBase64(doc.doc.export({ mode: "update", from: subscriber.version })), version: encodeVersion(current) });
        subscriber.version = current;
      });
      if (signal.aborted) return;
      for (;;) {
        const next = await subscriber.queue.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      subscriber.queue.end();
      doc.subscribers.delete(subscriber);
      if (doc.subscribers.size === 0) this.drop(doc);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscription?.close();
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
    if (this.docs.size === 0) return;
    if (event.type === "resync") {
      // Changes were trimmed before this node read them: rebuild every streamed document.
      for (const hd of this.docs.values()) {
        void hd.run(async () => {
          this.counters.reloads += 1;
          await this.load(hd);
          await this.fanOut(hd, true);
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
    // A row update may change who can read it: every subscriber is checked again then.
    await this.fanOut(hd, w.rowChanged !== null);
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

  /** Sends each subscriber what it lacks, after checking it may still read the row. */
  private async fanOut(hd: HubDoc, checkAll: boolean): Promise<void> {
    if (hd.closed) return;
    const current = hd.doc.oplogVersion();
    const due = [...hd.subscribers].filter((s) => !s.queue.isEnded && hasNews(current, s.version));
    const toCheck = checkAll ? [...hd.subscribers] : due;
    if (toCheck.length === 0) return;
    const verdicts = new Map<string, Promise<boolean>>();
    for (const s of toCheck) {
      if (!verdicts.has(s.scope)) verdicts.set(s.scope, this.deps.readable(s.ctx, hd.target).catch(() => false));
    }
    for (const s of toCheck) {
      if (await verdicts.get(s.scope)) continue;
      s.queue.end(notFound());
      hd.subscribers.delete(s);
    }
    if (hd.closed) return;
    const version = encodeVersion(current);
    const exports = new Map<string, string>();
    for (const s of due) {
      if (!hd.subscribers.has(s)) continue;
      const from = encodeVersion(s.version);
      let update = exports.get(from);
      if (update === undefined) {
        update = encodeBase64(hd.doc.export({ mode: "update", from: s.version }));
        exports.set(from, update);
      }
      s.queue.push({ update, version });
      s.version = current;
    }
    if (hd.subscribers.size === 0) this.drop(hd);
  }
}
