import type { PeerID } from "loro-crdt";

/** Unacknowledged local operations of one peer: op counters `[from, to)`. */
export interface OutboxSpan {
  peer: PeerID;
  from: number;
  to: number;
}

/**
 * The local changes the server has not acknowledged yet, as op-counter ranges per peer rather
 * than update blobs: the operations themselves live in the document (and its persisted
 * snapshot), so any number of local commits go out as ONE `updates-in-range` export, and an
 * acknowledgement just moves a range's start. A reloaded session keeps the spans of the peer
 * that made them (a fresh peer id per session: two tabs must never share one).
 */
export class Outbox {
  private readonly spans = new Map<PeerID, OutboxSpan>();

  constructor(initial: readonly OutboxSpan[] = []) {
    for (const span of initial) this.add(span.peer, span.from, span.to);
  }

  /** Local operations `[from, to)` of `peer` were committed. */
  add(peer: PeerID, from: number, to: number): void {
    if (to <= from) return;
    const current = this.spans.get(peer);
    if (current) {
      current.from = Math.min(current.from, from);
      current.to = Math.max(current.to, to);
    } else this.spans.set(peer, { peer, from, to });
  }

  /** The server stored everything in `sent` (what `list()` returned when the push started). */
  acknowledge(sent: readonly OutboxSpan[]): void {
    for (const done of sent) {
      const current = this.spans.get(done.peer);
      if (!current) continue;
      current.from = Math.max(current.from, done.to);
      if (current.from >= current.to) this.spans.delete(done.peer);
    }
  }

  /**
   * A copy of the ranges, to send and later acknowledge (later commits may grow them meanwhile).
   * With `limit`, only the first `limit` operations, oldest peer first and each peer's from its
   * start: what is sent is always closed under its own dependencies (a reloaded page's ops
   * before the ops this page made on top of them).
   */
  list(limit = Number.POSITIVE_INFINITY): OutboxSpan[] {
    const spans: OutboxSpan[] = [];
    let left = limit;
    for (const span of this.spans.values()) {
      if (left <= 0) break;
      const length = Math.min(span.to - span.from, left);
      spans.push({ peer: span.peer, from: span.from, to: span.from + length });
      left -= length;
    }
    return spans;
  }

  /** Unacknowledged local operations (Loro ops: one per inserted character run, deletion, set). */
  get size(): number {
    let total = 0;
    for (const span of this.spans.values()) total += span.to - span.from;
    return total;
  }
}
