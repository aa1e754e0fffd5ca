/**
 * A test node as its own process (so SIGKILL is real): runs `script` with `config` as JSON in the
 * environment variable `envName`, collects its stdout lines, and waits for lines by pattern.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { killChild, stopChild } from "./childProcess.ts";
import { waitFor } from "./waitFor.ts";

export interface NodeProcess {
  /** Resolves with the first line (seen or to come) matching `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  lines(): string[];
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export function startNodeProcess<Config extends { node: string }>(script: string, envName: string, config: Config): NodeProcess {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, [envName]: JSON.stringify(config), TETHER_LOG_LEVEL: "silent" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const seen: string[] = [];
  let buffer = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    seen.push(...parts);
  });
  return {
    // Generous: a child process that opens PGlite, migrates and starts pg-boss can take tens of
    // seconds on a loaded 2-core machine; this bounds failure detection, not speed.
    async line(pattern, timeoutMs = 90_000) {
      let match: RegExpMatchArray | null = null;
      await waitFor(`node ${config.node}: ${pattern}`, () => seen.some((l) => (match = l.match(pattern)) !== null), {
        timeoutMs,
        fatal: () => (child.exitCode !== null ? `node ${config.node} exited (${child.exitCode}): ${seen.join(" | ")}` : null),
      });
      return match!;
    },
    lines: () => [...seen],
    kill: () => killChild(child),
    stop: () => stopChild(child),
  };
}
