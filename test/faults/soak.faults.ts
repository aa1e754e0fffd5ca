// Soak (full form only: `npm run test:faults`): N subscribers × M writes/s on one Postgres node
// for FAULTS_SOAK_MINUTES (default 10). RSS must stay flat; event-loop lag and feed lag are
// recorded per second and plotted to docs/reliability-soak.png.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";
import { startNode, type TetherNode } from "./harness/nodeProcess.ts";
import { checkConvergence, httpClient, type WriteLog } from "./harness/oracle.ts";
import { renderSoakPng, type SoakPoint } from "./harness/plot.ts";
import { recordResult, SCENARIO_TIMEOUT_MS } from "./harness/run.ts";
import { startSubscribers, type Subscriber } from "./harness/subscribers.ts";

const MINUTES = Number(process.env.FAULTS_SOAK_MINUTES ?? 10);
const SUBSCRIBERS = Number(process.env.FAULTS_SOAK_SUBSCRIBERS ?? 40);
const WRITES_PER_S = Number(process.env.FAULTS_SOAK_WRITES_PER_S ?? 20);

describe("soak", () => {
  let database: TestDatabase;
  let node: TetherNode;
  let subscribers: Subscriber[] = [];
  beforeAll(async () => {
    database = await createTestDatabase("postgres");
    node = await startNode("soak", { url: database.url });
  });
  afterAll(async () => {
    await Promise.all(subscribers.map((s) => s.close()));
    await node?.stop();
    await database?.drop();
  });

  it(`${SUBSCRIBERS} subscribers × ${WRITES_PER_S} writes/s for ${MINUTES} min: RSS flat, every subscriber converges`, async () => {
    subscribers = startSubscribers(() => [node], "p1", SUBSCRIBERS);
    await waitFor("every subscriber's first value", () => subscribers.every((s) => s.data() !== undefined), { timeoutMs: 60_000 });
    const log: WriteLog = { acked: new Map(), done: new Map(), uncertain: new Set(), rolledBack: 0, failed: 0, serverErrors: [] };
    const client = httpClient(() => node);
    const start = Date.now();
    const end = start + MINUTES * 60_000;
    const samples: Array<{ s: number; rssMb: number; eventLoopLagMs: number }> = [];
    const sampler = setInterval(() => {
      node.stats().then((st) => samples.push({ s: (Date.now() - start) / 1000, rssMb: st.rss / 1e6, eventLoopLagMs: st.eventLoopLagMaxMs }), () => undefined);
    }, 1000);
    // Paced writes: one every 1000/M ms, each a new row (the list, and so each re-run, grows with
    // the soak: flat RSS then also says results are not kept beyond the current one).
    let n = 0;
    while (Date.now() < end) {
      const due = start + (n * 1000) / WRITES_PER_S;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const title = `soak-${n}`;
      n += 1;
      void client.tasks.add.mutate({ projectId: "p1", title }).then(
        (row) => log.acked.set(title, { id: row.id, ackAt: Date.now() }),
        () => (log.failed += 1),
      );
    }
    clearInterval(sampler);
    const verdict = await checkConvergence(() => [node], "p1", subscribers, log, { timeoutMs: 120_000 });

    // Feed lag per second: the worst subscriber delay among writes acknowledged in that second.
    const lagBySecond = new Map<number, number>();
    for (const [title, { ackAt }] of log.acked) {
      const second = Math.floor((ackAt - start) / 1000);
      const worst = Math.max(0, ...subscribers.map((s) => (s.firstSeen.get(title) ?? ackAt) - ackAt));
      lagBySecond.set(second, Math.max(lagBySecond.get(second) ?? 0, worst));
    }
    const points: SoakPoint[] = samples.map((p) => ({ ...p, feedLagMs: lagBySecond.get(Math.floor(p.s)) ?? null }));
    const file = join(import.meta.dirname, "..", "..", "docs", "reliability-soak.png");
    renderSoakPng(points, `Soak: ${SUBSCRIBERS} subscribers × ${WRITES_PER_S} writes/s, ${MINUTES} min, Postgres, one node`, file);

    // Flat RSS: the last quarter's median within 25% (+20 MB) of the second quarter's (after warm-up).
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const q = Math.floor(samples.length / 4);
    const warm = median(samples.slice(q, 2 * q).map((p) => p.rssMb));
    const late = median(samples.slice(3 * q).map((p) => p.rssMb));
    const lagWarm = median(samples.slice(q, 2 * q).map((p) => p.eventLoopLagMs));
    const lagLate = median(samples.slice(3 * q).map((p) => p.eventLoopLagMs));
    const feed = [...lagBySecond.values()];
    const summary = { warmRssMb: warm, lateRssMb: late, lagWarmMs: lagWarm, lagLateMs: lagLate, feedLagMaxMs: Math.max(0, ...feed), feedLagMedianMs: median(feed), writes: n, samples: samples.length };
    console.log("soak:", JSON.stringify({ ...verdict, ...summary }));
    recordResult({
      scenario: "soak",
      engine: "postgres",
      what: `${SUBSCRIBERS} subscribers (4 kinds) × ${WRITES_PER_S} writes/s for ${MINUTES} min, one node`,
      ...verdict,
      peakRssMb: Math.max(...samples.map((p) => p.rssMb)),
      extra: { ...summary, series: points },
    });
    expect(late).toBeLessThan(warm * 1.25 + 20);
  }, Math.max(SCENARIO_TIMEOUT_MS, MINUTES * 60_000 + 600_000));
});
