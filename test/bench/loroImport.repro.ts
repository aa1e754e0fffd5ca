/**
 * Standalone reproduction (issue 18): with many peers typing at once, one `LoroDoc.import` of a
 * single-character text edit gets slow as the document grows — much slower than when the same
 * number of edits arrive one after another, and than Yjs's `applyUpdate` on the same pattern.
 * Only loro-crdt and yjs; no Tether code. Run: `npx tsx test/bench/loroImport.repro.ts`
 * (REPRO_PEERS, REPRO_CHECKPOINTS="400,800,1200" to change the sizes). Findings and the upstream
 * issue draft: docs/upstream/loro-import.md.
 *
 * The pattern (what a collaboration server sees): PEERS peers type one character each at a random
 * position, all from the same version (none has seen the others' keystroke yet: concurrent), then
 * everyone receives everything; repeat. The server imports the updates one at a time, in arrival
 * order — after the first of a round, every next one is concurrent with what the doc just got.
 *
 * Compared, on identical update streams:
 * - attached:     `doc.import(u)` per update into an attached doc (a server's cached copy);
 * - +subscriber:  the same with a `doc.subscribe` callback (events computed and delivered);
 * - sequential:   the same number of single-character edits, but each typed after seeing all
 *                 earlier ones (no concurrency), imported one at a time;
 * - detached:     `doc.detach()` first, then `doc.import(u)` per update (oplog only; the state
 *                 is brought up once at the end with `checkoutToLatest`, timed separately);
 * - importBatch:  one `doc.importBatch(round)` per round of PEERS concurrent updates;
 * - yjs:          the same concurrent pattern with Y.Doc / `Y.applyUpdate`.
 */
import { LoroDoc } from "loro-crdt";
import { performance } from "node:perf_hooks";
import * as Y from "yjs";

const PEERS = Number(process.env.REPRO_PEERS ?? 20);
const CHECKPOINTS = (process.env.REPRO_CHECKPOINTS ?? "400,800,1200").split(",").map(Number);
const LAST = Math.max(...CHECKPOINTS);
/** Rounds averaged per checkpoint (the ones ending at it). */
const WINDOW = 3;

/** mulberry32: the same positions every run, and for Loro and Yjs alike. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Stream {
  /** Per round, the updates in arrival order. */
  rounds: Uint8Array[][];
  /** Text length after each round. */
  lengths: number[];
}

const char = (r: number) => String.fromCharCode(97 + Math.floor(r * 26));

/** Peer `peer` of `doc` types one character at a random position; returns the update since `from`. */
function typeOne(doc: LoroDoc, peer: number, rnd: () => number, from: ReturnType<LoroDoc["oplogVersion"]>): Uint8Array {
  doc.setPeerId(peer);
  const text = doc.getText("t");
  text.insert(Math.floor(rnd() * (text.length + 1)), char(rnd()));
  doc.commit();
  return doc.export({ mode: "update", from });
}

/** Rounds of PEERS concurrent one-character inserts (every peer forks the merged doc, types, exports). */
function loroConcurrent(): Stream {
  const rnd = random(1);
  const merged = new LoroDoc();
  const stream: Stream = { rounds: [], lengths: [] };
  while (merged.getText("t").length < LAST) {
    const from = merged.oplogVersion();
    const round: Uint8Array[] = [];
    for (let p = 0; p < PEERS; p++) round.push(typeOne(merged.fork(), p + 1, rnd, from));
    merged.importBatch(round);
    stream.rounds.push(round);
    stream.lengths.push(merged.getText("t").length);
  }
  return stream;
}

/** The same number of edits, each typed after seeing all earlier ones (grouped in rounds of PEERS for reporting). */
function loroSequential(): Stream {
  const rnd = random(1);
  const doc = new LoroDoc();
  const stream: Stream = { rounds: [], lengths: [] };
  while (doc.getText("t").length < LAST) {
    const round: Uint8Array[] = [];
    for (let p = 0; p < PEERS; p++) round.push(typeOne(doc, p + 1, rnd, doc.oplogVersion()));
    stream.rounds.push(round);
    stream.lengths.push(doc.getText("t").length);
  }
  return stream;
}

function yjsConcurrent(): Stream {
  const rnd = random(1);
  const merged = new Y.Doc();
  // One long-lived doc per peer (a Y.Doc receiving its own client's items from elsewhere would
  // pick a new client id), brought up to date with the merged doc before each round.
  const peers = Array.from({ length: PEERS }, (_, p) => {
    const doc = new Y.Doc();
    doc.clientID = p + 1;
    return doc;
  });
  const stream: Stream = { rounds: [], lengths: [] };
  while (merged.getText("t").length < LAST) {
    const from = Y.encodeStateVector(merged);
    const round: Uint8Array[] = [];
    for (const peer of peers) {
      Y.applyUpdate(peer, Y.encodeStateAsUpdate(merged, Y.encodeStateVector(peer)));
      const text = peer.getText("t");
      text.insert(Math.floor(rnd() * (text.length + 1)), char(rnd()));
      round.push(Y.encodeStateAsUpdate(peer, from));
    }
    for (const u of round) Y.applyUpdate(merged, u);
    stream.rounds.push(round);
    stream.lengths.push(merged.getText("t").length);
  }
  return stream;
}

/** Per round: mean ms of one import (or of one batch, for `perRound`). */
function replay(stream: Stream, apply: (updates: Uint8Array[]) => number[]): number[] {
  return stream.rounds.map((round) => {
    const times = apply(round);
    return times.reduce((a, b) => a + b, 0) / times.length;
  });
}

/**
 * CPU time of `fn`, ms (process.cpuUsage, µs resolution): on a shared, loaded machine wall time
 * mostly measures the wait for a core. REPRO_CLOCK=wall measures wall time instead.
 */
function timed(fn: () => void): number {
  if (process.env.REPRO_CLOCK === "wall") {
    const t0 = performance.now();
    fn();
    return performance.now() - t0;
  }
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** Mean over the WINDOW rounds ending where the text first reaches `length`. */
function at(stream: Stream, perRound: number[], length: number): number {
  const end = stream.lengths.findIndex((l) => l >= length);
  const slice = perRound.slice(Math.max(0, end - WINDOW + 1), end + 1);
  return slice.reduce((a, b) => a + b, 0) / slice.length;
}

const fmt = (ms: number) => (ms < 1 ? ms.toFixed(3) : ms.toFixed(2));

const concurrent = loroConcurrent();
const sequential = loroSequential();
const yjs = yjsConcurrent();

const rows: Array<[string, number[], Stream]> = [];

{
  const doc = new LoroDoc();
  rows.push(["attached: import per update (concurrent)", replay(concurrent, (us) => us.map((u) => timed(() => doc.import(u)))), concurrent]);
}
{
  const doc = new LoroDoc();
  let events = 0;
  doc.subscribe(() => void (events += 1));
  rows.push(["attached + subscriber (concurrent)", replay(concurrent, (us) => us.map((u) => timed(() => doc.import(u)))), concurrent]);
}
{
  const doc = new LoroDoc();
  rows.push(["attached: import per update (sequential edits)", replay(sequential, (us) => us.map((u) => timed(() => doc.import(u)))), sequential]);
}
let checkoutMs = 0;
let detachedOk = false;
{
  const doc = new LoroDoc();
  doc.detach();
  rows.push(["detached: import per update (concurrent)", replay(concurrent, (us) => us.map((u) => timed(() => doc.import(u)))), concurrent]);
  checkoutMs = timed(() => doc.checkoutToLatest());
  const reference = new LoroDoc();
  for (const round of concurrent.rounds) reference.importBatch(round);
  detachedOk = doc.getText("t").toString() === reference.getText("t").toString();
}
{
  const doc = new LoroDoc();
  rows.push([`attached: importBatch per round of ${PEERS} (per batch)`, replay(concurrent, (us) => [timed(() => doc.importBatch(us))]), concurrent]);
}
{
  const doc = new Y.Doc();
  rows.push(["yjs: applyUpdate per update (concurrent)", replay(yjs, (us) => us.map((u) => timed(() => Y.applyUpdate(doc, u)))), yjs]);
}

console.log(`loro-crdt ${(await import("loro-crdt/package.json", { with: { type: "json" } })).default.version}, yjs ${(await import("yjs/package.json", { with: { type: "json" } })).default.version}, Node ${process.version}; ${PEERS} peers; mean ${process.env.REPRO_CLOCK === "wall" ? "wall" : "CPU"} ms per import over the ${WINDOW} rounds (${WINDOW * PEERS} updates) ending at each length`);
console.log(`| | ${CHECKPOINTS.map((c) => `${c} chars`).join(" | ")} |`);
console.log(`|---|${CHECKPOINTS.map(() => "---").join("|")}|`);
for (const [name, perRound, stream] of rows) console.log(`| ${name} | ${CHECKPOINTS.map((c) => fmt(at(stream, perRound, c))).join(" | ")} |`);
console.log(`detached doc: checkoutToLatest after all ${concurrent.rounds.length * PEERS} imports took ${fmt(checkoutMs)} ms; text equals an attached replay: ${detachedOk}`);
