/**
 * What the deployment bench reports, computed after a run from the editors' reports:
 * - keystroke → others: for every (keystroke, other editor) pair, from the keystroke (its
 *   sender's wall time) to the first remote change after which that editor held it; split into
 *   keystrokes typed before the SIGKILL, during the outage (kill → all re-synced) and after;
 * - re-sync: from the SIGKILL until every editor held every keystroke typed before the restarted
 *   server was ready (so also those typed while it was down: reconnecting and exchanging what
 *   each side lacks is in it, the server's own start-up time too);
 * - drain: from the last keystroke until every editor held every keystroke;
 * - Tether's durable ack: from a keystroke to its sender's push being acknowledged;
 * - Tether's keystroke → sent: from a keystroke to the first push carrying it leaving its
 *   sender (time in the client's outbox).
 * Every pair must arrive, every editor must end on the same text and version, or this throws.
 */
import { round, summarize } from "../harness.ts";
import type { EditorReport } from "./editor.ts";

export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface WorkloadMetrics {
  keystrokes: number;
  pairs: number;
  before: Percentiles;
  outage: Percentiles;
  after: Percentiles;
  all: Percentiles;
  resyncMs: number | null;
  drainMs: number;
  ack: Percentiles | null;
  sent: Percentiles | null;
  textLength: number;
}

/** When `receiver` first held `sender`'s keystroke `id` (its arrivals are in id order). */
function arrivalOf(arrivals: Array<[number, number]> | undefined, id: number): number | null {
  if (!arrivals) return null;
  let lo = 0;
  let hi = arrivals.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arrivals[mid]![0] >= id) hi = mid;
    else lo = mid + 1;
  }
  return lo < arrivals.length ? arrivals[lo]![1] : null;
}

/** Throws unless every editor ends on the same text and version. */
export function checkConverged(reports: EditorReport[]): string {
  const text = reports[0]!.text;
  const differing = reports.filter((r) => r.text !== text);
  if (differing.length > 0) throw new Error(`crdt deploy bench: ${differing.length} of ${reports.length} editors' texts differ from editor 0's`);
  const version = JSON.stringify(Object.entries(reports[0]!.version).sort());
  const other = reports.findIndex((r) => JSON.stringify(Object.entries(r.version).sort()) !== version);
  if (other >= 0) throw new Error(`crdt deploy bench: editor ${other} ended on another version than editor 0`);
  return text;
}

/**
 * `from`: keystrokes typed before it (the warm-up) are not measured. `killAt`: the SIGKILL's wall
 * time, or null for a run without one; `readyAt`: when the restarted server was ready.
 */
export function computeMetrics(reports: EditorReport[], from: number, killAt: number | null, readyAt: number | null): WorkloadMetrics {
  const text = checkConverged(reports);
  // Re-synced: every editor holds every keystroke typed before the restarted server was ready.
  let resyncedAt = killAt;
  if (killAt !== null && readyAt !== null) {
    for (const sender of reports) {
      const lastBefore = [...sender.typed].reverse().find(([, at]) => at < readyAt);
      if (!lastBefore) continue;
      for (const receiver of reports) {
        if (receiver === sender) continue;
        const at = arrivalOf(receiver.arrivals[sender.peer], lastBefore[0]);
        if (at === null) throw new Error(`crdt deploy bench: editor ${receiver.peer} never got ${sender.peer}'s keystroke ${lastBefore[0]}`);
        resyncedAt = Math.max(resyncedAt!, at);
      }
    }
  }
  const before: number[] = [];
  const outage: number[] = [];
  const after: number[] = [];
  const ack: number[] = [];
  const sent: number[] = [];
  let keystrokes = 0;
  let lastTyped = -Infinity;
  let lastArrival = -Infinity;
  for (const sender of reports) {
    for (const [id, typedAt] of sender.typed) {
      if (typedAt < from) continue;
      keystrokes += 1;
      lastTyped = Math.max(lastTyped, typedAt);
      for (const receiver of reports) {
        if (receiver === sender) continue;
        const at = arrivalOf(receiver.arrivals[sender.peer], id);
        if (at === null) throw new Error(`crdt deploy bench: editor ${receiver.peer} never got ${sender.peer}'s keystroke ${id}`);
        lastArrival = Math.max(lastArrival, at);
        const ms = at - typedAt;
        if (killAt === null || typedAt < killAt) before.push(ms);
        else if (typedAt < resyncedAt!) outage.push(ms);
        else after.push(ms);
      }
    }
    const typedAt = new Map(sender.typed);
    for (const [id, ackedAt] of sender.acked) {
      const at = typedAt.get(id);
      if (at !== undefined && at >= from) ack.push(ackedAt - at);
    }
    for (const [id, sentAt] of sender.sent ?? []) {
      const at = typedAt.get(id);
      if (at !== undefined && at >= from) sent.push(sentAt - at);
    }
  }
  return {
    keystrokes,
    pairs: before.length + outage.length + after.length,
    before: summarize(before),
    outage: summarize(outage),
    after: summarize(after),
    all: summarize([...before, ...outage, ...after]),
    resyncMs: killAt === null ? null : round(resyncedAt! - killAt),
    drainMs: round(Math.max(0, lastArrival - lastTyped)),
    ack: ack.length > 0 ? summarize(ack) : null,
    sent: sent.length > 0 ? summarize(sent) : null,
    textLength: text.length,
  };
}
