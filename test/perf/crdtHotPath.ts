// A quick in-process microbench of the CRDT hot path (the full bench with editors in separate
// processes and Hocuspocus side by side is `npm run bench -- crdt`):
//   npx tsx test/perf/crdtHotPath.ts [postgres|pglite] [editors=20] [keystrokes/s=50] [seconds=10]
// N editors (raw LoroDocs over real WebSockets + HTTP batch, users alternating alice/bob) type
// one character at a time at random positions; each keeps one push in flight (commits meanwhile
// go in the next push), as @tether/client does. Reported: keystroke -> every other editor
// p50/p99 (includes waiting for the editor's previous ack), push sent -> every other editor (the
// server's relay), keystroke -> its durable ack p50/p99, then a flood phase (every editor typing as fast
// as its acks allow) for pushes/s, and the server's commits per push.
import { decodeImportBlobMeta, LoroDoc, type PeerID } from "loro-crdt";
import { createTestStore } from "../support/databases.ts";
import { b64, buildCrdtApp, connect, serve, unb64, type Client } from "../support/crdtApp.ts";

const engine = (process.argv[2] ?? "postgres") as "postgres" | "pglite";
const editors = Number(process.argv[3] ?? 20);
const rate = Number(process.argv[4] ?? 50);
const seconds = Number(process.argv[5] ?? 10);

const sent = new Map<PeerID, number[]>(); // peer -> keystroke time by op counter
const pushedAt = new Map<PeerID, number[]>(); // peer -> when the push carrying each op left
const delivery: number[] = [];
const relay: number[] = [];
const acks: number[] = [];
let measuring = true;

class Editor {
  readonly doc = new LoroDoc();
  private readonly seen = new Map<PeerID, number>();
  private pushedTo = 0;
  private inFlight = false;
  pushes = 0;
  constructor(private readonly client: Client) {
    sent.set(this.doc.peerIdStr, []);
    pushedAt.set(this.doc.peerIdStr, []);
  }
  open(): Promise<void> {
    return new Promise((resolve) => {
      this.client.$crdt.stream.subscribe(
        { model: "Note", id: "n1", field: "body" },
        {
          onData: (m) => {
            const bytes = unb64(m.update);
            const now = performance.now();
            const end = decodeImportBlobMeta(bytes, false).partialEndVersionVector.toJSON() as Map<PeerID, number>;
            this.doc.import(bytes);
            for (const [peer, counter] of end) {
              const times = sent.get(peer);
              const from = this.seen.get(peer) ?? 0;
              if (!times || peer === this.doc.peerIdStr || counter <= from) continue;
              const left = pushedAt.get(peer)!;
              for (let c = from; c < counter; c++) {
                if (times[c] !== undefined && measuring) delivery.push(now - times[c]!);
                if (left[c] !== undefined && measuring) relay.push(now - left[c]!);
              }
              this.seen.set(peer, counter);
            }
            resolve();
          },
          onError: (e) => console.error("stream error", e),
        },
      );
    });
  }
  type(): void {
    const text = this.doc.getText("body");
    text.insert(Math.floor(Math.random() * (text.length + 1)), "x");
    this.doc.commit();
    sent.get(this.doc.peerIdStr)![this.doc.oplogVersion().get(this.doc.peerIdStr)! - 1] = performance.now();
    void this.flush();
  }
  async flush(): Promise<void> {
    if (this.inFlight) return;
    const me = this.doc.peerIdStr;
    const to = this.doc.oplogVersion().get(me) ?? 0;
    if (to <= this.pushedTo) return;
    this.inFlight = true;
    const from = this.pushedTo;
    const update = this.doc.export({ mode: "updates-in-range", spans: [{ id: { peer: me, counter: from }, len: to - from }] });
    this.pushes += 1;
    const leaving = performance.now();
    for (let c = from; c < to; c++) pushedAt.get(me)![c] = leaving;
    await this.client.$crdt.push.mutate({ model: "Note", id: "n1", field: "body", update: b64(update) });
    const now = performance.now();
    const times = sent.get(me)!;
    for (let c = from; c < to; c++) if (measuring) acks.push(now - times[c]!);
    this.pushedTo = to;
    this.inFlight = false;
    await this.flush();
  }
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const fmt = (x: number) => x.toFixed(1);

const { store, close } = await createTestStore(engine);
await store.db.user.createMany({ data: ["alice", "bob"].map((id) => ({ id, email: `${id}@x`, name: id })) });
await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
await store.db.projectMember.create({ data: { projectId: "p1", userId: "bob" } });
await store.db.note.create({ data: { id: "n1", projectId: "p1", body: "" } });
const app = buildCrdtApp(store, {});
await app.tether.start();
const server = await serve(app.router);
const cleanups: Array<() => unknown> = [];
const all = Array.from({ length: editors }, (_, i) => new Editor(connect(server, i % 2 ? "bob" : "alice", cleanups)));
await Promise.all(all.map((e) => e.open()));
// Warm-up: every editor's write verdict and the server copy.
for (const e of all) e.type();
await new Promise((r) => setTimeout(r, 1000));
delivery.length = 0;
acks.length = 0;

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const total = rate * seconds;
for (let k = 0; k < total; k++) {
  const due = t0 + (k * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  all[Math.floor(Math.random() * editors)]!.type();
}
await new Promise((r) => setTimeout(r, 1500)); // drain
const cpu = process.cpuUsage(cpu0);
const wall = performance.now() - t0;
const stats1 = app.tether.stats.crdt();
console.log(
  JSON.stringify({
    engine,
    editors,
    rate,
    seconds,
    loadavg: (await import("node:os")).loadavg().map((x) => x.toFixed(1)).join(" "),
    keystrokeToOthers: { p50: fmt(pct(delivery, 50)), p99: fmt(pct(delivery, 99)), n: delivery.length },
    pushSentToOthers: { p50: fmt(pct(relay, 50)), p99: fmt(pct(relay, 99)) },
    durableAck: { p50: fmt(pct(acks, 50)), p99: fmt(pct(acks, 99)), n: acks.length },
    processCpuPercentOfCore: fmt(((cpu.user + cpu.system) / 1000 / wall) * 100),
    pushes: stats1.pushes,
    commits: stats1.commits,
    projections: stats1.projections,
  }),
);

// Flood: every editor types as fast as its acks allow (one push in flight each).
measuring = false;
const p0 = app.tether.stats.crdt().pushes;
const c0 = app.tether.stats.crdt().commits;
const floodMs = 5000;
const stopAt = performance.now() + floodMs;
await Promise.all(
  all.map(async (e) => {
    while (performance.now() < stopAt) {
      e.type();
      await e.flush();
      await new Promise((r) => setImmediate(r));
    }
  }),
);
const s2 = app.tether.stats.crdt();
console.log(JSON.stringify({ flood: { pushesPerSecond: fmt(((s2.pushes - p0) * 1000) / floodMs), pushesPerCommit: fmt((s2.pushes - p0) / Math.max(1, s2.commits - c0)) } }));

for (const c of cleanups.reverse()) await c();
await server.close();
await app.tether.close();
await close();
process.exit(0);
