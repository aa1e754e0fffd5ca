// A Tether node SIGKILLed with clients on it, under write load: its clients reconnect (bare tRPC
// clients to the next node, Tether clients to the restarted one), resume and converge. On PGlite
// the node owns its data dir, so the restarted node also recovers PGlite after a crash.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, engines, type TestDatabase } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";
import { startNode, type NodeConfig, type TetherNode } from "./harness/nodeProcess.ts";
import { checkConvergence, startWriters } from "./harness/oracle.ts";
import { recordResult, sampleNodes, SCENARIO_TIMEOUT_MS, size } from "./harness/run.ts";
import { startSubscribers, type Subscriber } from "./harness/subscribers.ts";

describe.each(engines)("a node SIGKILLed with clients on it, on %s", (engine) => {
  let database: TestDatabase | undefined;
  let dataDir: string | undefined;
  let nodes: TetherNode[] = [];
  let subscribers: Subscriber[] = [];

  beforeAll(async () => {
    let config: NodeConfig;
    if (engine === "postgres") {
      database = await createTestDatabase("postgres");
      config = { url: database.url };
    } else {
      dataDir = mkdtempSync(join(tmpdir(), "tether-faults-pglite-"));
      config = { dataDir };
    }
    nodes.push(await startNode("A", config));
    // PGlite is one process's database: a second node cannot open it.
    if (engine === "postgres") nodes.push(await startNode("B", config));
  });
  afterAll(async () => {
    await Promise.all(subscribers.map((s) => s.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, SCENARIO_TIMEOUT_MS);

  it("clients reconnect, resume and converge; no acknowledged write lost", async () => {
    const [victim] = nodes;
    // While a node is down, bare clients skip it (they rotate over the nodes that answer).
    let down: TetherNode | null = null;
    const endpoints = () => (nodes.length > 1 && down ? nodes.filter((n) => n !== down) : nodes);
    const sampler = sampleNodes(() => nodes);
    subscribers = startSubscribers(endpoints, "p1", size(8, 24));
    await waitFor("every subscriber's first value", () => subscribers.every((s) => s.data() !== undefined), { timeoutMs: 30_000 });
    const writers = startWriters(endpoints, "p1", size(2, 4));
    const progress = async (what: string, more: number) => {
      const target = writers.log.acked.size + more;
      await waitFor(`${more} more acknowledged writes ${what}`, () => writers.log.acked.size >= target, { timeoutMs: 60_000 });
    };
    const kills = size(2, 5);
    for (let i = 0; i < kills; i += 1) {
      await progress(`before kill ${i + 1}`, size(10, 40));
      down = victim!;
      await victim!.kill("SIGKILL");
      // Writes go on elsewhere (Postgres) while the node is down.
      if (engine === "postgres") await progress(`while ${victim!.name} is down`, size(5, 20));
      await victim!.restart();
      down = null;
    }
    await progress("after the last restart", size(10, 40));
    await writers.stop();
    sampler.stop();
    const verdict = await checkConvergence(endpoints, "p1", subscribers, writers.log);
    expect(nodes.map((n) => n.crashed()).filter(Boolean)).toEqual([]);
    console.log(`node kill on ${engine}:`, JSON.stringify({ ...verdict, peakRssMb: sampler.peakRssMb() }));
    recordResult({
      scenario: "node-sigkill",
      engine,
      what: `${nodes.length} node(s), ${subscribers.length} subscribers (4 kinds), ${size(2, 4)} writers; node A SIGKILLed and restarted ${kills}×`,
      ...verdict,
      peakRssMb: sampler.peakRssMb(),
    });
  }, SCENARIO_TIMEOUT_MS);
});
