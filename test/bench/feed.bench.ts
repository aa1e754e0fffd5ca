/**
 * Feed suite: what change capture costs on the write path, and how fast a commit reaches a
 * change-feed subscriber. Both engines side by side, each on a fresh migrated demo database.
 *
 * 1. Insert throughput through Prisma on the demo schema, capture trigger on "Task" disabled vs
 *    enabled (ALTER TABLE … DISABLE/ENABLE TRIGGER on one database), and enabled with a live feed
 *    subscriber reading along. The arms alternate round by round (order rotated each round) so
 *    machine noise and table growth land on every arm alike; the medians of the per-round rates
 *    are reported. Variants: one row per transaction (`task.create`) and 100-row `createMany`.
 * 2. COMMIT → delivery latency: an open-loop writer commits one Task insert per transaction at a
 *    fixed rate (500/s, then 50/s for the idle-wake case) while a `createChangeFeed` subscriber on
 *    the same store records when each row is delivered, matched by primary key. Latency is
 *    measured from COMMIT returning ("after commit") and from just before COMMIT is sent
 *    ("send→delivery"). Every committed row must be delivered exactly once, or the bench throws.
 */
import pg from "pg";
import type { ChangeFeed, FeedEvent, FeedSubscription } from "@tether/server";
import { createChangeFeed } from "@tether/server/internal";
import { createTestStore, type AppStore } from "../support/databases.ts";
import { now, resourceMeter, round, sleep, summarize, type BenchOptions, type BenchResult, type Engine } from "./harness.ts";

const SUITE = "feed";
const INSERT_SQL = /* sql */ `INSERT INTO "Task" ("id", "projectId", "title", "updatedAt") VALUES ($1, $2, $3, now())`;

interface Sizes {
  rounds: number;
  singleRowsPerRound: number;
  batchSize: number;
  batchesPerRound: number;
  latencySeconds: number;
  writers: number;
}

function sizes(quick: boolean): Sizes {
  return quick
    ? { rounds: 3, singleRowsPerRound: 100, batchSize: 100, batchesPerRound: 3, latencySeconds: 1, writers: 8 }
    : { rounds: 5, singleRowsPerRound: 400, batchSize: 100, batchesPerRound: 20, latencySeconds: 10, writers: 8 };
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const size = sizes(options.quick);
  const results: BenchResult[] = [];
  for (const engine of options.engines) {
    // One database per engine (opening a PGlite takes seconds on a busy machine). The latency
    // runs come after the insert rounds; the feed reads through the xid index, so the rows those
    // left in the change log do not slow it.
    const made = await createTestStore(engine);
    try {
      const projectId = await seed(made.store);
      results.push(...(await insertThroughput(made.store, engine, projectId, size)));
      for (const rate of [500, 50]) {
        results.push(await deliveryLatency(made.store, engine, made.database.url, projectId, rate, size));
      }
    } finally {
      await made.close();
    }
  }
  return results;
}

async function seed(store: AppStore): Promise<string> {
  const user = await store.db.user.create({ data: { email: "bench@example.com", name: "Bench" } });
  const project = await store.db.project.create({ data: { name: "Bench", ownerId: user.id } });
  return project.id;
}

async function setCapture(store: AppStore, enabled: boolean): Promise<void> {
  await store.sql.exec(`ALTER TABLE "Task" ${enabled ? "ENABLE" : "DISABLE"} TRIGGER "_tether_capture"`);
}

async function changeCount(store: AppStore): Promise<number> {
  const [row] = await store.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM "_tether_changes"`);
  return Number(row?.n ?? 0);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

type Arm = "off" | "on" | "feed";
const ARMS: readonly Arm[] = ["off", "on", "feed"];

/** A live feed subscriber counting delivered Task inserts, for the "feed" arm. */
async function openCounter(store: AppStore): Promise<{ delivered: () => number; close(): Promise<void>; caughtUp(): Promise<void> }> {
  const feed = await createChangeFeed({ sql: store.sql, trimIntervalMs: 0 });
  let delivered = 0;
  const subscription = await feed.subscribe((event) => {
    if (event.type === "transaction") for (const c of event.changes) if (c.table === "Task") delivered += 1;
  });
  return {
    delivered: () => delivered,
    caughtUp: () => subscription.caughtUp(),
    async close() {
      subscription.close();
      await feed.close();
    },
  };
}

async function insertThroughput(store: AppStore, engine: Engine, projectId: string, size: Sizes): Promise<BenchResult[]> {
  let seq = 0;
  const variants: { scenario: string; rowsPerRound: number; insert: () => Promise<void> }[] = [
    {
      scenario: "insert: 1 row/tx (Prisma task.create)",
      rowsPerRound: size.singleRowsPerRound,
      insert: async () => {
        for (let i = 0; i < size.singleRowsPerRound; i++) {
          await store.db.task.create({ data: { projectId, title: `single ${seq++}` } });
        }
      },
    },
    {
      scenario: `insert: ${size.batchSize} rows/tx (Prisma createMany)`,
      rowsPerRound: size.batchSize * size.batchesPerRound,
      insert: async () => {
        for (let b = 0; b < size.batchesPerRound; b++) {
          const data = Array.from({ length: size.batchSize }, () => ({ projectId, title: `batch ${seq++}` }));
          await store.db.task.createMany({ data });
        }
      },
    },
  ];

  const results: BenchResult[] = [];
  for (const variant of variants) {
    // Warm-up (Prisma, plans, JIT) with capture on, not measured.
    await variant.insert();
    const rates: Record<Arm, number[]> = { off: [], on: [], feed: [] };
    for (let round = 0; round < size.rounds; round++) {
      const order = ARMS.map((_, i) => ARMS[(i + round) % ARMS.length]!);
      for (const arm of order) {
        await setCapture(store, arm !== "off");
        const counter = arm === "feed" ? await openCounter(store) : undefined;
        const before = await changeCount(store);
        const t0 = now();
        await variant.insert();
        const elapsed = now() - t0;
        rates[arm].push((variant.rowsPerRound / elapsed) * 1000);
        if (counter) {
          await counter.caughtUp();
          const got = counter.delivered();
          await counter.close();
          if (got !== variant.rowsPerRound) throw new Error(`${engine} ${variant.scenario}: feed delivered ${got} of ${variant.rowsPerRound} inserts`);
        }
        // Sanity: the trigger really was off (no rows logged) or on (one per row).
        const logged = (await changeCount(store)) - before;
        const expected = arm === "off" ? 0 : variant.rowsPerRound;
        if (logged !== expected) throw new Error(`${engine} ${variant.scenario} arm ${arm}: ${logged} change rows logged, expected ${expected}`);
      }
    }
    await setCapture(store, true);
    const off = median(rates.off);
    const on = median(rates.on);
    const feed = median(rates.feed);
    results.push({
      suite: SUITE,
      scenario: variant.scenario,
      engine,
      rounds: size.rounds,
      rowsPerRound: variant.rowsPerRound,
      noTriggerRowsPerSec: round(off, 0),
      triggerRowsPerSec: round(on, 0),
      triggerOverheadPct: round((1 - on / off) * 100, 1),
      triggerFeedRowsPerSec: round(feed, 0),
      triggerFeedOverheadPct: round((1 - feed / off) * 100, 1),
    });
  }
  return results;
}

/** Commits one Task insert in its own transaction; sendAt = just before COMMIT, commitAt = COMMIT returned. */
interface Writer {
  description: string;
  write(id: string): Promise<{ sendAt: number; commitAt: number }>;
  close(): Promise<void>;
}

async function openWriter(store: AppStore, engine: Engine, url: string | undefined, projectId: string, connections: number): Promise<Writer> {
  if (engine === "postgres") {
    if (!url) throw new Error("postgres test database has no url");
    const clients = await Promise.all(
      Array.from({ length: connections }, async () => {
        const client = new pg.Client({ connectionString: url, application_name: "tether-bench-writer" });
        await client.connect();
        return client;
      }),
    );
    const free = [...clients];
    const waiting: Array<(c: pg.Client) => void> = [];
    const acquire = (): Promise<pg.Client> => {
      const c = free.pop();
      return c ? Promise.resolve(c) : new Promise((resolve) => waiting.push(resolve));
    };
    const release = (c: pg.Client): void => {
      const next = waiting.shift();
      if (next) next(c);
      else free.push(c);
    };
    return {
      description: `raw SQL, ${connections} pg conns`,
      async write(id) {
        const client = await acquire();
        try {
          await client.query("BEGIN");
          await client.query(INSERT_SQL, [id, projectId, id]);
          const sendAt = now();
          await client.query("COMMIT");
          return { sendAt, commitAt: now() };
        } finally {
          release(client);
        }
      },
      async close() {
        await Promise.all(clients.map((c) => c.end()));
      },
    };
  }
  // PGlite is one in-process connection: the writer shares it (and its queue) with the feed.
  return {
    description: `raw SQL, shared PGlite, ${connections} in flight`,
    async write(id) {
      let sendAt = 0;
      await store.sql.transaction(async (tx) => {
        await tx.query(INSERT_SQL, [id, projectId, id]);
        sendAt = now();
      });
      return { sendAt, commitAt: now() };
    },
    close: async () => undefined,
  };
}

async function deliveryLatency(
  store: AppStore,
  engine: Engine,
  url: string | undefined,
  projectId: string,
  rate: number,
  size: Sizes,
): Promise<BenchResult> {
  const total = Math.round(rate * size.latencySeconds);
  const intervalMs = 1000 / rate;
  const writer = await openWriter(store, engine, url, projectId, size.writers);
  const runId = `${rate}-${Date.now().toString(36)}`;
  // Warm the writer connections and the feed's read path before measuring.
  for (let i = 0; i < 20; i++) await writer.write(`warm-${runId}-${i}`);

  const feed: ChangeFeed = await createChangeFeed({ sql: store.sql, trimIntervalMs: 0 });
  const sendAt = new Map<string, number>();
  const commitAt = new Map<string, number>();
  const deliveredAt = new Map<string, number>();
  let duplicates = 0;
  let unexpected = 0;
  let resyncs = 0;
  let subscription: FeedSubscription | undefined;
  try {
    subscription = await feed.subscribe((event: FeedEvent) => {
      const t = now();
      if (event.type === "resync") {
        resyncs += 1;
        return;
      }
      for (const change of event.changes) {
        const id = change.pk?.["id"];
        if (change.table !== "Task" || change.op !== "INSERT" || typeof id !== "string" || !id.startsWith(`lat-${runId}-`)) {
          unexpected += 1;
          continue;
        }
        if (deliveredAt.has(id)) duplicates += 1;
        else deliveredAt.set(id, t);
      }
    });
    const stats0 = feed.stats();
    const meter = resourceMeter();

    // Open loop: write i is due at start + i·interval, whatever the previous writes are doing,
    // with at most `size.writers` writes in flight on either engine (like a small connection
    // pool). A write that has to wait for a free slot is issued late: that shows as slip and as
    // an achieved rate below target, not as a queue growing inside the database.
    const inFlight = new Set<Promise<void>>();
    let maxSlipMs = 0;
    let slipSum = 0;
    const start = now();
    for (let i = 0; i < total; i++) {
      const due = start + i * intervalMs;
      const wait = due - now();
      if (wait > 0.5) await sleep(Math.floor(wait));
      while (inFlight.size >= size.writers) await Promise.race(inFlight);
      const slip = Math.max(0, now() - due);
      maxSlipMs = Math.max(maxSlipMs, slip);
      slipSum += slip;
      const id = `lat-${runId}-${i}`;
      const write: Promise<void> = writer.write(id).then((t) => {
        sendAt.set(id, t.sendAt);
        commitAt.set(id, t.commitAt);
        inFlight.delete(write);
      });
      inFlight.add(write);
    }
    await Promise.all(inFlight);
    const writeEnd = now();

    // Wait for every committed row (bounded), then let any duplicate show up.
    const deadline = now() + 15_000;
    while (deliveredAt.size < total && now() < deadline) await sleep(5);
    await subscription.caughtUp();
    await sleep(100);
    const resources = meter.stop();
    const stats1 = feed.stats();

    const lost = [...commitAt.keys()].filter((id) => !deliveredAt.has(id));
    if (lost.length > 0 || duplicates > 0 || unexpected > 0 || resyncs > 0) {
      throw new Error(
        `${engine} @${rate}/s: committed ${commitAt.size}, delivered ${deliveredAt.size}, lost ${lost.length} (${lost.slice(0, 5).join(", ")}), ` +
          `duplicates ${duplicates}, unexpected ${unexpected}, resyncs ${resyncs}`,
      );
    }
    const afterCommit: number[] = [];
    const fromSend: number[] = [];
    const commitRtt: number[] = [];
    for (const [id, delivered] of deliveredAt) {
      afterCommit.push(delivered - commitAt.get(id)!);
      fromSend.push(delivered - sendAt.get(id)!);
      commitRtt.push(commitAt.get(id)! - sendAt.get(id)!);
    }
    const a = summarize(afterCommit);
    const s = summarize(fromSend);
    const reads = stats1.reads - stats0.reads;
    const transactions = stats1.deliveredTransactions - stats0.deliveredTransactions;
    return {
      suite: SUITE,
      scenario: `commit→delivery @${rate}/s`,
      engine,
      writer: writer.description,
      targetPerSec: rate,
      achievedPerSec: round((total / (writeEnd - start)) * 1000, 0),
      meanSlipMs: round(slipSum / total),
      maxSlipMs: round(maxSlipMs),
      committed: commitAt.size,
      delivered: deliveredAt.size,
      p50Ms: a.p50,
      p99Ms: a.p99,
      maxMs: a.max,
      sendP50Ms: s.p50,
      sendP99Ms: s.p99,
      sendMaxMs: s.max,
      commitP50Ms: summarize(commitRtt).p50,
      feedReads: reads,
      txPerRead: round(transactions / Math.max(1, reads), 2),
      cpuPercent: resources.cpuPercent,
    };
  } finally {
    subscription?.close();
    await feed.close();
    await writer.close();
  }
}
