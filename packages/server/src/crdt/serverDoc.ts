import type { LoroDoc } from "loro-crdt";
import type { DocTarget } from "./target.ts";

/**
 * A node's ONE copy of a document, shared by pushes (group commit), projection and the stream
 * hub. It holds committed state only — a relayed update reaches subscribers as bytes, never
 * this copy, until it is durable — and it is kept detached (imports then only extend the oplog;
 * see `loadDoc`). Work on it runs one piece at a time (`run`): a commit's import and its
 * transaction are never interleaved with a fan-out's export.
 */
export class ServerDoc {
  /** Detached, committed state; null: load it from the database before use. */
  doc: LoroDoc | null = null;
  /**
   * The highest update-log id the copy holds (ids of one document grow in commit order: they are
   * taken under its row lock). The change feed's news of an id up to it needs nothing — this
   * node's own commits, and after a reload every update the reload covered (a compaction costs
   * one reload, not one per queued update).
   */
  through = 0;
  /** Holders that keep this copy from being evicted (streams, queued pushes, a due projection). */
  pins = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly target: DocTarget) {}

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/** The node's server copies by document key, idle ones evicted past `capacity` (oldest use first). */
export class ServerDocs {
  private readonly entries = new Map<string, ServerDoc>();
  constructor(private readonly capacity: number) {}

  get(t: DocTarget): ServerDoc {
    let sd = this.entries.get(t.key);
    if (sd) {
      this.entries.delete(t.key); // most recently used last
      this.entries.set(t.key, sd);
      return sd;
    }
    sd = new ServerDoc(t);
    this.entries.set(t.key, sd);
    if (this.entries.size > this.capacity) {
      for (const [key, entry] of this.entries) {
        if (this.entries.size <= this.capacity) break;
        if (entry.pins === 0 && entry !== sd) this.entries.delete(key);
      }
    }
    return sd;
  }

  peek(key: string): ServerDoc | undefined {
    return this.entries.get(key);
  }

  values(): IterableIterator<ServerDoc> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }
}
