/** Tether nodes as child processes: start, SIGKILL, restart on the same port, read their stats. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ReactorConfig, ReactorStats } from "@tether/server";
import type { TetherServerOptions, TransportStats } from "@tether/server/adapters/node";

export interface NodeConfig {
  /** Postgres URL; absent: PGlite at `dataDir`. */
  url?: string;
  dataDir?: string;
  port?: number;
  /** Drop every NOTIFY this node receives (it must rely on its poll and sweep). */
  noNotify?: boolean;
  reactor?: Partial<ReactorConfig>;
  server?: Pick<TetherServerOptions<never>, "limits">;
}

export interface NodeStats {
  pid: number;
  rss: number;
  heapUsed: number;
  eventLoopLagMaxMs: number;
  eventLoopLagMeanMs: number;
  reactor: ReactorStats;
  transport: TransportStats;
}

export interface TetherNode {
  readonly name: string;
  port: number;
  url: string;
  wsUrl: string;
  /** The current process; replaced by `restart`. */
  process(): ChildProcess;
  /** Whether the current process exited (and how) without being told to. */
  crashed(): string | null;
  stats(): Promise<NodeStats>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** A new process with the same config and port (after a kill). */
  restart(): Promise<void>;
  /** SIGTERM and wait (the harness's teardown). */
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL("./nodeMain.ts", import.meta.url));

function launch(name: string, config: NodeConfig): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: { ...process.env, FAULTS_NODE: JSON.stringify(config), TETHER_LOG_LEVEL: process.env.FAULTS_NODE_LOG ?? "silent" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /READY (\d+)/.exec(out);
      if (match) {
        child.stdout!.off("data", onData);
        child.off("exit", onExit);
        child.stdout!.resume();
        resolve({ child, port: Number(match[1]) });
      }
    };
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`node ${name} exited before ready (code ${code}, signal ${signal}): ${out}`));
    child.stdout!.on("data", onData);
    child.once("exit", onExit);
  });
}

export async function startNode(name: string, config: NodeConfig): Promise<TetherNode> {
  let { child, port } = await launch(name, config);
  let expectedExit = false;
  let crash: string | null = null;
  const watch = (c: ChildProcess) =>
    c.once("exit", (code, signal) => {
      if (!expectedExit && c === child) crash = `node ${name} exited: code ${code}, signal ${signal}`;
    });
  watch(child);
  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once("exit", () => r()));
  const node: TetherNode = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/trpc`,
    process: () => child,
    crashed: () => crash,
    async stats() {
      const response = await fetch(`${node.url}/faults/stats`);
      return (await response.json()) as NodeStats;
    },
    async kill(signal = "SIGKILL") {
      expectedExit = true;
      child.kill(signal);
      await exited(child);
    },
    async restart() {
      ({ child } = await launch(name, { ...config, port }));
      expectedExit = false;
      watch(child);
    },
    async stop() {
      expectedExit = true;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited(child);
      clearTimeout(timer);
    },
  };
  return node;
}
