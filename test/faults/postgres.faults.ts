// Postgres faults under load, on a cluster of the suite's own (test/faults/harness/cluster.ts):
// the cluster restarted (clean and crash), the listening connection killed again and again, and a
// node whose NOTIFYs never arrive. Two Tether nodes as processes, every kind of subscriber on each.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LISTENER_APPLICATION_NAME } from "@tether/server/internal";
import { waitFor } from "../support/waitFor.ts";
import { startCluster, type Cluster } from "./harness/cluster.ts";
import { startNode, type TetherNode } from "./harness/nodeProcess.ts";
import { checkConvergence, startWriters } from "./harness/oracle.ts";
import { recordResult, sampleNodes, SCENARIO_TIMEOUT_MS, size } from "./harness/run.ts";
import { startSubscribers, type Subscriber } from "./harness/subscribers.ts";

describe("Postgres restarted, listener killed, NOTIFY lost (own cluster)", () => {
  let cluster: Cluster;
  let nodes: TetherNode[] = [];
  let subscribers: Subscriber[] = [];

  beforeAll(async () => {
    cluster = await startCluster();
    const url = await cluster.createDatabase("faults");
    nodes.push(await startNode("A", { url }));
    // B never hears a NOTIFY: only its feed's poll (1 s) tells it anything changed.
    nodes.push(await startNode("B (no NOTIFY)", { url, noNotify: true }));
  });
  afterAll(async () => {
    await Promise.all(subscribers.map((s) => s.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await cluster?.destroy();
  }, SCENARIO_TIMEOUT_MS);

  it("every subscriber converges to a fresh query, no acknowledged write lost, no rollback shown", async () => {
    const endpoints = () => nodes;
    const sampler = sampleNodes(() => nodes);
    subscribers = startSubscribers(endpoints, "p1", size(8, 24));
    await waitFor("every subscriber's first value", () => subscribers.every((s) => s.data() !== undefined), { timeoutMs: 30_000 });
    const writers = startWriters(endpoints, "p1", size(2, 4));
    const progress = async (what: string, more: number) => {
      const target = writers.log.acked.size + more;
      await waitFor(`${more} more acknowledged writes ${what}`, () => writers.log.acked.size >= target, {
        timeoutMs: 60_000,
        fatal: () => nodes.map((n) => n.crashed()).find(Boolean),
      });
    };

    await progress("before any fault", size(10, 50));
    await cluster.restart("fast");
    await progress("after a clean restart", size(10, 50));
    await cluster.restart("immediate");
    await progress("after a crash restart", size(10, 50));
    const kills = size(3, 10);
    for (let i = 0; i < kills; i += 1) {
      const killed = await cluster.query<{ ok: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
        [LISTENER_APPLICATION_NAME],
      );
      expect(killed.length).toBeGreaterThan(0);
      await progress(`after listener kill ${i + 1}`, size(5, 20));
    }
    await writers.stop();
    sampler.stop();
    const verdict = await checkConvergence(endpoints, "p1", subscribers, writers.log);
    console.log("postgres faults:", JSON.stringify({ ...verdict, peakRssMb: sampler.peakRssMb(), serverErrors: writers.log.serverErrors.slice(0, 5) }));
    expect(nodes.map((n) => n.crashed()).filter(Boolean)).toEqual([]);
    recordResult({
      scenario: "postgres-restart-listener-kill-no-notify",
      engine: "postgres",
      what: `2 nodes (B without NOTIFY), ${subscribers.length} subscribers (4 kinds), ${size(2, 4)} writers; pg_ctl restart -m fast, -m immediate, ${kills}× pg_terminate_backend(listener)`,
      ...verdict,
      peakRssMb: sampler.peakRssMb(),
      extra: { serverErrors: writers.log.serverErrors.length },
    });
  }, SCENARIO_TIMEOUT_MS);
});
