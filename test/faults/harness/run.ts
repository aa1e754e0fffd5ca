/**
 * What every scenario shares: the run's size (short inside `npm test`, full in
 * `npm run test:faults`), node stats sampling, and the results file docs/reliability.md is built from.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeStats, TetherNode } from "./nodeProcess.ts";
import type { Verdict } from "./oracle.ts";

/** `npm run test:faults` sets FAULTS_FULL=1 (vitest.faults.config.ts); `npm test` runs the short form. */
export const FULL = process.env.FAULTS_FULL === "1";

/** `short` inside `npm test`, `full` in `npm run test:faults`. */
export const size = <T,>(short: T, full: T): T => (FULL ? full : short);

export const RESULTS_DIR = join(import.meta.dirname, "..", "results");

/** Samples each node's stats every `everyMs` until stopped; keeps the peaks and the series. */
export function sampleNodes(nodes: () => TetherNode[], everyMs = 500) {
  const series: Array<{ t: number; node: string } & Partial<NodeStats>> = [];
  let peakRss = 0;
  const timer = setInterval(() => {
    for (const node of nodes()) {
      node
        .stats()
        .then((s) => {
          peakRss = Math.max(peakRss, s.rss);
          series.push({ t: Date.now(), node: node.name, ...s });
        })
        .catch(() => undefined); // a node that is down has no stats
    }
  }, everyMs);
  return {
    series,
    peakRssMb: () => Math.round(peakRss / 1e5) / 10,
    stop: () => clearInterval(timer),
  };
}

export interface ScenarioResult extends Partial<Verdict> {
  scenario: string;
  engine: string;
  what: string;
  peakRssMb?: number;
  extra?: Record<string, unknown>;
}

/** Writes the scenario's numbers (full runs only: the short form leaves the tree alone). */
export function recordResult(result: ScenarioResult): void {
  if (!FULL && !process.env.FAULTS_RECORD) return;
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${result.scenario}.${result.engine}.json`);
  writeFileSync(file, `${JSON.stringify({ ...result, at: new Date().toISOString(), full: FULL }, null, 2)}\n`);
}

/** Per-test timeout: scenarios wait for conditions; this only ends a run that hangs. */
export const SCENARIO_TIMEOUT_MS = size(240_000, 1_800_000);
