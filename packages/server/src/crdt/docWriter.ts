import { TRPCError } from "@trpc/server";
import { LoroDoc, VersionVector } from "loro-crdt";
import type { Logger } from "../log/index.ts";
import type { SqlClient } from "../store/index.ts";
import { badRequest, encodeVersion, hasNews, notFound } from "./codec.ts";
import {
  appendUpdate,
  atLatest,
  isAt,
  loadDoc,
  lockRow,
  readColumn,
  readStored,
  staleProjections,
  writeProjection,
  type CrdtSql,
  type StoredDoc,
} from "./docStore.ts";
import { ServerDocs, type ServerDoc } from "./serverDoc.ts";
import { columnMatches, projection, reconcile, resolveTarget, type DocTarget } from "./target.ts";
import type { SchemaMeta } from "../schema/index.ts";
import type { CrdtOptions } from "./types.ts";

/** A pushed update waiting for its group commit. */
interface Waiting {
  readonly bytes: Uint8Array;
  /** The update's end version per peer (from its header): imported iff the document reaches it. */
  readonly end: Map<string, number>;
  resolve(version: string): void;
  reject(error: unknown): void;
}

interface DocQueue {
  readonly t: DocTarget;
  waiting: Waiting[];
  running: boolean;
}

export interface DocWriterDeps {
  sql: SqlClient;
  schema: SchemaMeta;
  log: Logger;
  options: Required<CrdtOptions>;
  /** After a commit changed the copy (inside its `run`): the hub sends subscribers what they lack. */
  committed: (sd: ServerDoc) => Promise<void>;
  /** Before the first write of a model's documents: its deletion trigger. */
  ensureTrigger: (t: DocTarget) => Promise<void>;
  /** Timers (tests inject fake ones). */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** What a pass under the row lock found. */
interface Locked {
  stored: StoredDoc | null;
  doc: LoroDoc;
  before: VersionVector;
  /** The column's md5 as found under the lock. */
  md5: string | null;
  /** md5 to record as known to the document (seeded or reconciled from the column), else null. */
  absorbed: string | null;
}

/**
 * The write side of documents on a node: group commit of pushes, the debounced projection into
 * the model's column, and foreign writes of that column reconciled into the document.
 *
 * Group commit: pushes to one document queue while its previous commit runs; the next commit
 * takes them all — one transaction, one row lock, one `importBatch`, one logged update — and
 * acknowledges each pusher after COMMIT (an ack means durable). A push that fails alone (malformed,
 * missing dependencies) is refused alone.
 */
export class DocWriter {
  readonly docs: ServerDocs;
  readonly counters = { pushes: 0, commits: 0, compactions: 0, projections: 0, reconciles: 0, inFlight: 0 };
  private readonly queues = new Map<string, DocQueue>();
  private readonly projections = new Map<string, { sd: ServerDoc; timer: unknown }>();
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private closed = false;

  constructor(private readonly deps: DocWriterDeps) {
    this.docs = new ServerDocs(deps.options.cachedDocs);
    this.setTimer =
      deps.setTimer ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        timer.unref?.();
        return timer;
      });
    this.clearTimer = deps.clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  }

  /** Queues a validated, write-checked update; resolves with the document's version once it is durable. */
  push(t: DocTarget, bytes: Uint8Array, end: Map<string, number>): Promise<string> {
    if (this.closed) return Promise.reject(new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "the server is shutting down" }));
    let queue = this.queues.get(t.key);
    if (!queue) {
      queue = { t, waiting: [], running: false };
      this.queues.set(t.key, queue);
    }
    this.counters.inFlight += 1;
    const settled = () => (this.counters.inFlight -= 1);
    const promise = new Promise<string>((resolve, reject) =>
      queue.waiting.push({
        bytes,
        end,
        resolve: (version) => (settled(), resolve(version)),
        reject: (error) => (settled(), reject(error)),
      }),
    );
    if (!queue.running) void this.drain(queue);
    return promise;
  }

  /** Loads the copy if it lags the database and reconciles a foreign column write (own transaction, in the copy's run). */
  sync(t: DocTarget): Promise<LoroDoc | null> {
    const sd = this.docs.get(t);
    return sd.run(() => this.syncIn(sd));
  }

  /** `sync` for a caller already inside the copy's `run`. */
  async syncIn(sd: ServerDoc): Promise<LoroDoc | null> {
    const done = await this.commit(sd, []);
    return done ? sd.doc : null;
  }

  /** Projects the document into its column within `projectionDelayMs` (changes meanwhile go with it). */
  scheduleProjection(sd: ServerDoc): void {
    if (this.closed || this.projections.has(sd.target.key)) return;
    sd.pins += 1;
    const entry = { sd, timer: null as unknown };
    this.projections.set(sd.target.key, entry);
    entry.timer = this.setTimer(() => void this.projectDue(sd.target.key), this.deps.options.projectionDelayMs);
  }

  /** Projects every due document now (the last editor left; shutdown). */
  async flushProjections(): Promise<void> {
    await Promise.all([...this.projections.keys()].map((key) => this.projectDue(key)));
  }

  /** Projects the document now if a projection is due (its last subscriber on this node left). */
  async projectNow(key: string): Promise<void> {
    await this.projectDue(key);
  }

  /**
   * At start: documents whose projection was due when a node stopped (or was killed) are
   * projected from their persisted state.
   */
  async recover(): Promise<number> {
    const stale = await staleProjections(this.deps.sql);
    let n = 0;
    for (const row of stale) {
      let t: DocTarget;
      try {
        t = resolveTarget(this.deps.schema, { model: row.model, id: row.row_id, field: row.field });
      } catch {
        continue; // a model or field no longer in the schema
      }
      const sd = this.docs.get(t);
      await sd.run(() => this.project(sd));
      n += 1;
    }
    return n;
  }

  async close(): Promise<void> {
    await this.flushProjections();
    this.closed = true;
    for (const queue of this.queues.values()) {
      for (const w of queue.waiting.splice(0)) w.reject(new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "the server is shutting down" }));
    }
  }

  get queuedPushes(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.waiting.length;
    return n;
  }

  // --- group commit ------------------------------------------------------------------------

  private async drain(queue: DocQueue): Promise<void> {
    queue.running = true;
    const sd = this.docs.get(queue.t);
    sd.pins += 1;
    try {
      while (queue.waiting.length > 0) {
        const batch = queue.waiting.splice(0);
        await sd.run(() => this.commitBatch(sd, batch)).catch((error: unknown) => {
          for (const w of batch) w.reject(error);
        });
      }
    } finally {
      sd.pins -= 1;
      queue.running = false;
      if (queue.waiting.length === 0) this.queues.delete(queue.t.key);
      else void this.drain(queue);
    }
  }

  private async commitBatch(sd: ServerDoc, batch: Waiting[]): Promise<void> {
    const refused = new Map<Waiting, TRPCError>();
    const ok = await this.commit(sd, batch, refused);
    if (!ok) {
      for (const w of batch) w.reject(notFound());
      return;
    }
    const version = encodeVersion(sd.doc!.oplogVersion());
    for (const w of batch) {
      const error = refused.get(w);
      if (error) w.reject(error);
      else w.resolve(version);
    }
  }

  /**
   * One pass under the row lock: bring the copy to the stored version, absorb a foreign write of
   * the column, import `batch`, log what changed; then COMMIT. Returns false when the row is gone.
   * Inside the copy's `run`.
   */
  private async commit(sd: ServerDoc, batch: Waiting[], refused?: Map<Waiting, TRPCError>): Promise<boolean> {
    const t = sd.target;
    if (batch.length > 0 || !sd.doc) await this.deps.ensureTrigger(t);
    let appended: { id: number; compacted: boolean } | null = null;
    try {
      const done = await this.deps.sql.transaction(async (tx) => {
        const locked = await this.lock(tx, sd);
        if (!locked) return false;
        const { doc, before } = locked;
        if (batch.length > 0) importAll(doc, batch, refused!);
        // (A new document whose column is empty stays unstored until it gets an edit.)
        if (hasNews(doc.oplogVersion(), before)) {
          appended = await appendUpdate(tx, t, locked.stored, doc, before, locked.absorbed, this.deps.options);
        }
        return true;
      });
      if (!done) {
        sd.doc = null;
        return false;
      }
    } catch (error) {
      sd.doc = null; // it may hold what did not commit
      throw error;
    }
    if (appended) {
      const { id, compacted } = appended as { id: number; compacted: boolean };
      sd.through = Math.max(sd.through, id);
      this.counters.commits += 1;
      if (compacted) this.counters.compactions += 1;
      this.scheduleProjection(sd);
      await this.deps.committed(sd);
    }
    this.counters.pushes += batch.length - (refused?.size ?? 0);
    return true;
  }

  /** Row lock, stored bookkeeping, the copy at the stored version, a foreign column write absorbed. */
  private async lock(tx: CrdtSql, sd: ServerDoc): Promise<Locked | null> {
    const t = sd.target;
    const row = await lockRow(tx, t);
    if (!row) return null;
    const stored = await readStored(tx, t);
    let absorbed: string | null = null;
    if (!stored) {
      // A new document starts from what the column holds (an ordinary edit of the server's peer).
      const doc = new LoroDoc();
      const column = await readColumn(tx, t);
      if (column && !columnMatches(t, doc, column.value)) reconcile(t, doc, column.value);
      doc.detach();
      sd.doc = doc;
      sd.through = 0;
      absorbed = row.md5;
      return { stored, doc, before: new LoroDoc().oplogVersion(), md5: row.md5, absorbed };
    }
    if (!sd.doc || !isAt(sd.doc, stored.version)) ({ doc: sd.doc, through: sd.through } = await loadDoc(tx, t));
    const doc = sd.doc;
    const before = doc.oplogVersion();
    // Someone else wrote the column since the last projection (its md5 is not the one projected):
    // their text becomes an edit of the document, merged like any peer's. A null `projected` is a
    // document from before projections were tracked, when the column always equalled it.
    if (stored.projected !== null && row.md5 !== stored.projected) {
      const column = await readColumn(tx, t);
      if (column && absorbColumn(t, doc, column.value, stored.projected_version)) this.counters.reconciles += 1;
      absorbed = row.md5;
    }
    return { stored, doc, before, md5: row.md5, absorbed };
  }

  // --- projection --------------------------------------------------------------------------

  private async projectDue(key: string): Promise<void> {
    const entry = this.projections.get(key);
    if (!entry) return;
    this.projections.delete(key);
    this.clearTimer(entry.timer);
    const { sd } = entry;
    try {
      await sd.run(() => this.project(sd));
    } catch (error) {
      this.deps.log.warn({ err: (error as Error).message, model: sd.target.model.name }, "crdt: projecting a document failed; retrying");
      if (!this.closed) this.scheduleProjection(sd);
    } finally {
      sd.pins -= 1;
    }
  }

  /** Writes the document's latest value into the column (inside the copy's `run`). */
  private async project(sd: ServerDoc): Promise<void> {
    const t = sd.target;
    let appended: { id: number } | null = null;
    const done = await this.deps.sql.transaction(async (tx) => {
      const locked = await this.lock(tx, sd);
      if (!locked?.stored) return false;
      const { doc, before } = locked;
      let stored: StoredDoc = locked.stored;
      if (hasNews(doc.oplogVersion(), before) || locked.absorbed) {
        // The column's foreign write became an edit: logged before projecting.
        appended = await appendUpdate(tx, t, stored, doc, before, locked.absorbed, this.deps.options);
        stored = { ...stored, version: doc.oplogVersion().encode() };
      }
      const value = atLatest(doc, (d) => projection(t, d));
      await writeProjection(tx, t, value, stored.version, locked.md5);
      return true;
    }).catch((error: unknown) => {
      sd.doc = null;
      throw error;
    });
    if (!done) return;
    this.counters.projections += 1;
    if (appended) {
      sd.through = Math.max(sd.through, (appended as { id: number }).id);
      await this.deps.committed(sd);
    }
  }
}

/**
 * Makes a foreign write of the column an edit of the document, made FROM the version the column
 * was last projected from (Loro's detached editing): the writer changed what it saw, so its
 * change merges with everything committed since, as a concurrent peer's edit would — an edit
 * typed after the last projection is kept, not overwritten by the older text around it.
 */
function absorbColumn(t: DocTarget, doc: LoroDoc, value: unknown, base: Uint8Array | null): boolean {
  let frontiers: ReturnType<LoroDoc["vvToFrontiers"]> | null = null;
  if (base) {
    try {
      frontiers = doc.vvToFrontiers(VersionVector.decode(base));
    } catch {
      frontiers = null;
    }
  }
  if (!frontiers) return atLatest(doc, (d) => !columnMatches(t, d, value) && reconcile(t, d, value));
  doc.setDetachedEditing(true);
  try {
    doc.checkout(frontiers);
    return !columnMatches(t, doc, value) && reconcile(t, doc, value);
  } finally {
    doc.setDetachedEditing(false);
    doc.detach();
  }
}

/**
 * Imports a batch into the detached copy: one `importBatch`, or one at a time when the batch
 * fails (a malformed update is refused alone). An update whose end the document does not reach
 * afterwards depends on changes the server lacks: refused (the client pulls, then re-sends).
 */
function importAll(doc: LoroDoc, batch: Waiting[], refused: Map<Waiting, TRPCError>): void {
  try {
    doc.importBatch(batch.map((w) => w.bytes));
  } catch {
    for (const w of batch) {
      try {
        doc.import(w.bytes);
      } catch {
        refused.set(w, badRequest("update could not be imported (malformed)"));
      }
    }
  }
  const version = doc.oplogVersion();
  for (const w of batch) {
    if (refused.has(w)) continue;
    for (const [peer, end] of w.end) {
      if ((version.get(peer as `${number}`) ?? 0) < end) {
        refused.set(w, badRequest("update depends on changes the server does not have: pull first"));
        break;
      }
    }
  }
}
