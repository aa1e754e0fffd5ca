/**
 * Child processes of the deployment bench: the server under test and each editor run in their
 * own Node process (`node --import tsx <file>`), so no editor shares an event loop with the
 * server or with another editor. A child gets its config as JSON in BENCH_CHILD, says
 * `READY <json>` on stdout when it serves, and talks to the parent over Node's IPC channel.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface Child<Ready = unknown> {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** What the child printed after READY. */
  readonly ready: Ready;
  /** Sends a request over IPC and resolves with the child's answer (matched by id). */
  request<T>(message: Record<string, unknown>): Promise<T>;
  /** Sends a message that needs no answer. */
  send(message: Record<string, unknown>): void;
  /** Messages the child sends on its own (not answers). */
  onMessage(handler: (message: Record<string, unknown>) => void): void;
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited(): boolean;
}

const tsx = ["--import", "tsx"];

/** Starts `file` (relative to this folder) with `config`; resolves once it printed READY. */
export function startChild<Ready = unknown>(name: string, file: string, config: unknown, timeoutMs = 180_000): Promise<Child<Ready>> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  const child = spawn(process.execPath, [...tsx, path], {
    env: { ...process.env, BENCH_CHILD: JSON.stringify(config), TETHER_LOG_LEVEL: process.env.BENCH_CHILD_LOG ?? "silent" },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  let nextId = 1;
  const waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  const handlers: Array<(message: Record<string, unknown>) => void> = [];
  child.on("message", (raw) => {
    const message = raw as Record<string, unknown>;
    const id = message.replyTo;
    if (typeof id === "number") {
      const w = waiting.get(id);
      waiting.delete(id);
      if (message.error) w?.reject(new Error(`${name}: ${String(message.error)}`));
      else w?.resolve(message.value);
      return;
    }
    for (const h of handlers) h(message);
  });
  child.once("exit", () => {
    for (const w of waiting.values()) w.reject(new Error(`${name} exited`));
    waiting.clear();
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} not ready after ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /READY (.*)\n/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off("data", onData);
      child.off("exit", onExit);
      child.stdout!.resume();
      const ready = JSON.parse(match[1]!) as Ready;
      resolve({
        name,
        process: child,
        pid: child.pid!,
        ready,
        request<T>(message: Record<string, unknown>) {
          const id = nextId++;
          return new Promise<T>((res, rej) => {
            waiting.set(id, { resolve: res as (value: unknown) => void, reject: rej });
            child.send({ ...message, id });
          });
        },
        send(message) {
          if (child.connected) child.send(message);
        },
        onMessage(handler) {
          handlers.push(handler);
        },
        kill: (signal = "SIGTERM") => {
          if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
          const done = new Promise<void>((r) => child.once("exit", () => r()));
          child.kill(signal);
          const force = setTimeout(() => child.kill("SIGKILL"), 5000);
          return done.finally(() => clearTimeout(force));
        },
        exited: () => child.exitCode !== null || child.signalCode !== null,
      });
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before ready (code ${code}, signal ${signal}): ${out}`));
    };
    child.stdout!.on("data", onData);
    child.once("exit", onExit);
  });
}

/** The child side: its config, READY, and answering the parent's requests. */
export function childConfig<T>(): T {
  return JSON.parse(process.env.BENCH_CHILD ?? "{}") as T;
}

export function announceReady(value: unknown): void {
  process.stdout.write(`READY ${JSON.stringify(value)}\n`);
}

/** Answers each IPC request `{ id, type, ... }` with `handle`'s value (or its error). */
export function serveRequests(handle: (message: Record<string, unknown>) => unknown): void {
  process.on("message", (raw) => {
    const message = raw as Record<string, unknown>;
    void (async () => {
      try {
        const value = await handle(message);
        if (typeof message.id === "number") process.send?.({ replyTo: message.id, value });
      } catch (error) {
        if (typeof message.id === "number") process.send?.({ replyTo: message.id, error: error instanceof Error ? error.stack ?? error.message : String(error) });
      }
    })();
  });
  // The parent gone (its IPC channel closed): nothing left to serve.
  process.on("disconnect", () => process.exit(0));
}

/** CPU time (user + system, ms) a process used so far, from /proc (Linux); null elsewhere. */
export function cpuMsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
/** USER_HZ: 100 on every Linux this runs on (`getconf CLK_TCK`). */
const CLOCK_TICKS = 100;

/** Wall clock shared by every process of the bench: ms since the epoch with sub-ms precision. */
export const wallNow = (): number => performance.timeOrigin + performance.now();
