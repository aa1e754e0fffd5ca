/**
 * `npm run bench [suite...]`: runs the benchmark suites side by side on PGlite and (when
 * reachable) Postgres, prints a table per suite and writes test/bench/results/<date>.json
 * (`{ suites: { <suite>: { ranAt, node, results: [one object per scenario] } } }`; a later run of
 * a suite the same day replaces that suite's entry).
 * BENCH_QUICK=1 shrinks every size, to check the benches themselves quickly.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { engines as testEngines } from "../support/databases.ts";
import type { BenchOptions, BenchResult } from "./harness.ts";

process.env.TETHER_LOG_LEVEL ??= "silent";

// Every `<suite>.bench.ts` beside this file is a suite named <suite>: adding a bench is adding a file.
const benchDir = dirname(fileURLToPath(import.meta.url));
const suites: Record<string, () => Promise<{ run(options: BenchOptions): Promise<BenchResult[]> }>> =
  Object.fromEntries(
    readdirSync(benchDir)
      .filter((file) => file.endsWith(".bench.ts"))
      .sort()
      .map((file) => [file.slice(0, -".bench.ts".length), () => import(join(benchDir, file))]),
  );

const requested = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const names = requested.length > 0 ? requested : Object.keys(suites);
const options: BenchOptions = { engines: [...testEngines], quick: process.env.BENCH_QUICK === "1" };
const resultsDir = join(benchDir, "results");
const date = new Date().toISOString().slice(0, 10);

for (const name of names) {
  const load = suites[name];
  if (!load) {
    console.error(`unknown bench suite "${name}"; known: ${Object.keys(suites).join(", ")}`);
    process.exit(2);
  }
  console.log(`\n## ${name} (engines: ${options.engines.join(", ")}${options.quick ? ", quick" : ""})`);
  const results = await (await load()).run(options);
  console.table(results.map(({ suite: _s, ...rest }) => rest));
  mkdirSync(resultsDir, { recursive: true });
  // Quick and subset runs go to their own file: they must not replace a full run's numbers.
  const subset = process.env.BENCH_SUBSCRIBERS || process.env.BENCH_SYSTEMS ? "-subset" : "";
  const file = join(resultsDir, `${date}${options.quick ? "-quick" : ""}${subset}.json`);
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { suites?: Record<string, unknown> }) : {};
  const suitesOut = { ...previous.suites, [name]: { ranAt: new Date().toISOString(), node: process.version, results } };
  writeFileSync(file, JSON.stringify({ suites: suitesOut }, null, 2) + "\n");
  console.log(`wrote ${file}`);
}
process.exit(0);
