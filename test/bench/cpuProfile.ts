/**
 * Optional CPU profiles of bench child processes (`BENCH_PROFILE=1`): `node --cpu-prof` writes a
 * `.cpuprofile` when the process exits (the live bench's nodes exit on SIGTERM), and
 * `topSelfTime` sums each function's self time from its samples, for a printed summary of where
 * a node's time went. The profiler samples on wall time: on a loaded machine a descheduled
 * thread's stack is still sampled, so shares are of the node's wall time, (idle) included.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * This process's main thread: time on a CPU and time runnable in the kernel's run queue waiting
 * for one (Linux /proc/self/schedstat, ms). Their sum near the wall time means the thread always
 * had work (CPU-bound); wait ≫ run means a loaded machine, not the code, set its pace. Null
 * elsewhere.
 */
export function schedstat(): { runMs: number; waitMs: number } | null {
  try {
    const [run, wait] = readFileSync("/proc/self/schedstat", "utf8").trim().split(/\s+/).map(Number);
    return { runMs: run! / 1e6, waitMs: wait! / 1e6 };
  } catch {
    return null;
  }
}

export const profilingEnabled = (): boolean => process.env.BENCH_PROFILE === "1";

/** Node flags that profile a child into `dir` (empty unless BENCH_PROFILE=1). */
export function profileArgs(dir: string): string[] {
  if (!profilingEnabled()) return [];
  mkdirSync(dir, { recursive: true });
  return ["--cpu-prof", "--cpu-prof-dir", dir];
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  fn: string;
  selfMs: number;
  percent: number;
}

/** The `top` functions by self time in one profile (idle and GC are listed as V8 names them). */
export function topSelfTime(file: string, top = 15): { totalMs: number; functions: SelfTime[] } {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const delta = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${url.replace(/^file:\/\/.*?node_modules\//, "").replace(/^file:\/\/.*?\/(packages|test)\//, "$1/")}:${lineNumber + 1}` : "";
    const key = `${functionName || "(anonymous)"} ${where}`.trim();
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + delta);
    total += delta;
  }
  const functions = [...selfMicros.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, micros]) => ({ fn, selfMs: Math.round(micros / 1000), percent: Math.round((micros / total) * 1000) / 10 }));
  return { totalMs: Math.round(total / 1000), functions };
}

/** Prints the summary of every profile in `dir` (one per profiled process). */
export function printProfiles(dir: string, label: string, top = 15): void {
  let files: string[] = [];
  try {
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (the
    // others are loader workers, idle).
    files = readdirSync(dir).filter((file) => /\.\d+\.0\.\d+\.cpuprofile$/.test(file));
  } catch {
    return;
  }
  for (const file of files) {
    const { totalMs, functions } = topSelfTime(join(dir, file), top);
    console.error(`\nCPU profile ${label} (${join(dir, file)}), ${totalMs} ms sampled, top ${top} by self time:`);
    for (const f of functions) console.error(`  ${String(f.selfMs).padStart(7)} ms ${String(f.percent).padStart(5)}%  ${f.fn}`);
  }
}
