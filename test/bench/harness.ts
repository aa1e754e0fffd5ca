/**
 * Shared pieces of `npm run bench`: engines, percentiles, CPU/RSS sampling, result records.
 * Each bench module exports `run(options)` returning BenchResult rows; run.ts prints them as a
 * table and writes them to test/bench/results/<date>-<suite>.json.
 */
import { performance } from "node:perf_hooks";

export type Engine = "pglite" | "postgres";

export interface BenchOptions {
  engines: Engine[];
  /** Smaller sizes, for checking the bench itself works (BENCH_QUICK=1). */
  quick: boolean;
}

/** One scenario's measurements. Extra numeric/string fields are allowed per suite. */
export interface BenchResult {
  suite: string;
  scenario: string;
  engine: Engine;
  [metric: string]: string | number | boolean | null | undefined;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function summarize(samples: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted[sorted.length - 1] ?? NaN) };
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const now = (): number => performance.now();

/** CPU time (ms, user+system) and peak RSS (MB) of this process over a measured section. */
export function resourceMeter() {
  const cpu0 = process.cpuUsage();
  const wall0 = now();
  let peakRss = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 50);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      const cpu = process.cpuUsage(cpu0);
      const wallMs = now() - wall0;
      const cpuMs = (cpu.user + cpu.system) / 1000;
      return { cpuMs: round(cpuMs), cpuPercent: round((cpuMs / wallMs) * 100, 1), peakRssMb: round(peakRss / 1024 / 1024, 1), wallMs: round(wallMs) };
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let exposedGc: (() => void) | null | undefined;

/**
 * Runs a full garbage collection between scenarios: `global.gc` when node runs with --expose-gc,
 * else V8's gc exposed at runtime (`v8.setFlagsFromString`). False when neither is possible.
 */
export async function collectGarbage(): Promise<boolean> {
  if (exposedGc === undefined) {
    exposedGc = null;
    if (typeof globalThis.gc === "function") {
      const gc = globalThis.gc;
      exposedGc = () => void gc();
    } else {
      try {
        const [{ setFlagsFromString }, { runInNewContext }] = await Promise.all([import("node:v8"), import("node:vm")]);
        setFlagsFromString("--expose-gc");
        const gc: unknown = runInNewContext("gc");
        if (typeof gc === "function") exposedGc = () => void (gc as () => unknown)();
      } catch {
        exposedGc = null;
      }
    }
  }
  if (!exposedGc) return false;
  exposedGc();
  await sleep(10);
  exposedGc();
  return true;
}

/**
 * Drains in-process live streams and counts their messages; `reach(n)` resolves once n arrived.
 * Woken by the messages, not polled: a polling loop would bill its own CPU to the measurement.
 */
export function messageCounter() {
  let received = 0;
  const waiting: { count: number; resolve: (() => void) | null } = { count: 0, resolve: null };
  const drains: Promise<void>[] = [];
  return {
    received: () => received,
    reach: (count: number) =>
      received >= count ? Promise.resolve() : new Promise<void>((resolve) => Object.assign(waiting, { count, resolve })),
    drain(stream: AsyncIterable<unknown>) {
      drains.push((async () => {
        try {
          for await (const _ of stream) {
            received += 1;
            if (waiting.resolve && received >= waiting.count) {
              waiting.resolve();
              waiting.resolve = null;
            }
          }
        } catch {
          // aborted at the end
        }
      })());
    },
    /** Resolves once every drained stream ended. */
    ended: () => Promise.allSettled(drains),
  };
}
