// Overload: consumers that stop reading or vanish, a reconnect storm (every client of a node at
// once), and a long re-run blocked by a lock. The server must stay bounded and responsive, and
// every healthy subscriber must still converge.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createTestDatabase, engines, type TestDatabase } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";
import { startNode, type NodeConfig, type TetherNode } from "./harness/nodeProcess.ts";
import { checkConvergence, startWriters } from "./harness/oracle.ts";
import { recordResult, sampleNodes, SCENARIO_TIMEOUT_MS, size } from "./harness/run.ts";
import { startSubscribers, type Subscriber } from "./harness/subscribers.ts";

describe.each(engines)("overload on %s", (engine) => {
  let database: TestDatabase | undefined;
  let node: TetherNode | undefined;
  let subscribers: Subscriber[] = [];
  const cleanups: Array<() => unknown> = [];

  async function start(config: Omit<NodeConfig, "url" | "dataDir"> = {}): Promise<TetherNode> {
    if (engine === "postgres") database = await createTestDatabase("postgres");
    else {
      // A file, so a restarted node finds its data again.
      const dataDir = mkdtempSync(join(tmpdir(), "tether-faults-pglite-"));
      cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      node = await startNode("A", { ...config, dataDir });
      return node;
    }
    node = await startNode("A", { ...config, url: database!.url });
    return node;
  }
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await Promise.all(subscribers.map((s) => s.close()));
    subscribers = [];
    await node?.stop();
    await database?.drop();
    database = undefined;
  });

  /** A raw WebSocket client subscribed to the project's list, which then stops reading or vanishes. */
  async function badConsumer(node: TetherNode, behaviour: "stalled" | "vanished"): Promise<void> {
    const socket = new WebSocket(node.wsUrl);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    socket.on("error", () => undefined);
    const first = new Promise<void>((resolve) => socket.once("message", () => resolve()));
    socket.send(JSON.stringify({ id: 1, method: "subscription", params: { path: "$live", input: { path: "tasks.byProject", input: { projectId: "p1" } } } }));
    await first;
    const raw = (socket as unknown as { _socket: import("node:net").Socket })._socket;
    if (behaviour === "stalled") raw.pause(); // TCP window fills; the server's buffer grows
    else raw.destroy(); // gone without a closing handshake
    cleanups.push(() => socket.terminate());
  }

  it("slow and vanished consumers: memory stays bounded, healthy subscribers converge", async () => {
    // A small per-socket bound so a stalled reader reaches it within the run.
    const node = await start({ server: { limits: { maxBufferedBytesPerConnection: 1 << 20 } } });
    const sampler = sampleNodes(() => [node], 250);
    const baseline = (await node.stats()).rss;
    for (let i = 0; i < size(10, 50); i += 1) await badConsumer(node, i % 2 === 0 ? "stalled" : "vanished");
    subscribers = startSubscribers(() => [node], "p1", size(4, 8));
    await waitFor("every subscriber's first value", () => subscribers.every((s) => s.data() !== undefined), { timeoutMs: 30_000 });
    const writers = startWriters(() => [node], "p1", size(2, 4));
    // Long enough that every stalled reader's unsent bytes exceed the bound.
    await waitFor("enough writes to overflow stalled readers", () => writers.log.acked.size >= size(200, 1500), { timeoutMs: 300_000, fatal: () => node.crashed() });
    await writers.stop();
    sampler.stop();
    const verdict = await checkConvergence(() => [node], "p1", subscribers, writers.log);
    const stats = await node.stats();
    const growthMb = (sampler.peakRssMb() * 1e6 - baseline) / 1e6;
    console.log(`slow consumers on ${engine}:`, JSON.stringify({ ...verdict, peakRssMb: sampler.peakRssMb(), growthMb, transport: stats.transport }));
    // Memory bound, not a clock: the node may not grow by more than a fixed budget whatever the backlog.
    expect(growthMb).toBeLessThan(300);
    recordResult({
      scenario: "slow-vanished-consumers",
      engine,
      what: `${size(10, 50)} raw WS subscribers (half stalled, half vanished), ${subscribers.length} healthy, maxBufferedBytesPerConnection 1 MiB`,
      ...verdict,
      peakRssMb: sampler.peakRssMb(),
      extra: { rssGrowthMb: growthMb, slowConsumersTerminated: stats.transport.slowConsumersTerminated },
    });
  }, SCENARIO_TIMEOUT_MS);

  it("reconnect storm: every client of a restarted node reconnects at once and converges", async () => {
    const node = await start();
    const sampler = sampleNodes(() => [node], 250);
    subscribers = startSubscribers(() => [node], "p1", size(60, 600), ["trpc-ws", "core-ws", "trpc-sse", "core-sse"]);
    await waitFor("every subscriber's first value", () => subscribers.every((s) => s.data() !== undefined), { timeoutMs: 120_000 });
    const writers = startWriters(() => [node], "p1", 2);
    await waitFor("some writes", () => writers.log.acked.size >= 20, { timeoutMs: 60_000 });
    await node.kill("SIGKILL");
    await node.restart();
    await waitFor("more writes after the storm", () => writers.log.acked.size >= 60, { timeoutMs: 120_000 });
    await writers.stop();
    sampler.stop();
    const verdict = await checkConvergence(() => [node], "p1", subscribers, writers.log, { timeoutMs: 180_000 });
    console.log(`storm on ${engine}:`, JSON.stringify({ ...verdict, peakRssMb: sampler.peakRssMb() }));
    recordResult({ scenario: "reconnect-storm", engine, what: `${subscribers.length} subscribers on one node, node SIGKILLed and restarted under writes`, ...verdict, peakRssMb: sampler.peakRssMb() });
  }, SCENARIO_TIMEOUT_MS);

  it.runIf(engine === "postgres")("a re-run blocked by a lock longer than the query timeout: subscribers converge after it is released", async () => {
    const node = await start({ reactor: { queryTimeoutMs: 500 } });
    subscribers = startSubscribers(() => [node], "p1", 8);
    await waitFor("every subscriber's first value", () => subscribers.every((s) => s.data() !== undefined), { timeoutMs: 30_000 });
    const writers = startWriters(() => [node], "p1", 1);
    await waitFor("some writes", () => writers.log.acked.size >= 10, { timeoutMs: 60_000 });
    await writers.stop();
    // A write commits, then a lock blocks every read of Task: the re-run it causes hangs past the timeout.
    const locker = new pg.Client({ connectionString: database!.url });
    await locker.connect();
    cleanups.push(() => locker.end());
    const before = (await node.stats()).reactor.timeouts;
    await locker.query(`INSERT INTO "Task" (id, "projectId", title, "updatedAt") VALUES ('locked-write', 'p1', 'locked-write', now())`);
    await locker.query("BEGIN");
    await locker.query(`LOCK TABLE "Task" IN ACCESS EXCLUSIVE MODE`);
    await waitFor("a re-run to time out behind the lock", async () => (await node.stats()).reactor.timeouts > before, { timeoutMs: 60_000 });
    await waitFor("a second timeout (the lock outlives several timeouts)", async () => (await node.stats()).reactor.timeouts > before + 1, { timeoutMs: 60_000 });
    await locker.query("COMMIT");
    const verdict = await checkConvergence(() => [node], "p1", subscribers, writers.log);
    expect(subscribers.every((s) => s.everSeen.has("locked-write"))).toBe(true);
    recordResult({ scenario: "lock-blocked-rerun", engine, what: "ACCESS EXCLUSIVE lock on Task held across ≥2 query timeouts (500 ms) after a write", ...verdict });
  }, SCENARIO_TIMEOUT_MS);
});
