/**
 * A client process of the live bench: many simulated users, each with its own WebSocket to one
 * node, holding their live queries the way an app does —
 * - `tether`: `@tether/client` core (`createTetherClient` → `live.acquire`, patches applied by
 *   the client into its TanStack cache);
 * - `baseline`: a bare `@trpc/client` wsLink subscription to the baseline's `live` procedure
 *   (every message is the whole result).
 * For each value a subscription receives, every write stamp in it that the subscription had not
 * held before (a title ending in `@<µs>`, or an aggregate's `_max.position`) is one latency sample:
 * receive time − stamp (liveWorkload.ts), on the machine clock both processes share. Counts carry
 * no stamp: their messages are counted, not timed. Bytes are the WebSocket payloads received.
 *
 * IPC: `{ id, op: "start", config }` answers once every subscription holds its first value;
 * `{ id, op: "report" }` answers with what was measured since the last report (and resets it).
 */
import { QueryClient } from "@tanstack/query-core";
import { createTRPCClient, createWSClient, getUntypedClient, wsLink } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import { WebSocket } from "ws";
import { createTetherClient, liveHash } from "@tether/client";
import { schedstat } from "./cpuProfile.ts";
import { nowMicros, stampOf, type LiveSpec } from "./liveWorkload.ts";
import type { LiveSystem } from "./liveNode.ts";

export interface Endpoint {
  url: string;
  wsUrl: string;
}

export interface ClientUser {
  user: string;
  node: number;
  specs: LiveSpec[];
}

export interface LiveClientsConfig {
  system: LiveSystem;
  epochMs: number;
  nodes: Endpoint[];
  users: ClientUser[];
}

export interface NodeReport {
  /** Parallel arrays: the write's stamp (ms, epoch time) and its receive − stamp (ms). */
  stampsMs: number[];
  latenciesMs: number[];
  messages: number;
  bytes: number;
}

export interface ClientsReport {
  nodes: NodeReport[];
  cpuMs: number;
  /** Main thread runnable but waiting for a CPU (schedstat), ms. */
  runQueueWaitMs: number | null;
  errors: string[];
}

const emptyReport = (): NodeReport => ({ stampsMs: [], latenciesMs: [], messages: 0, bytes: 0 });

async function main(): Promise<void> {
  let config: LiveClientsConfig | null = null;
  let reports: NodeReport[] = [];
  const errors: string[] = [];
  let cpu0 = process.cpuUsage();
  let wait0 = schedstat()?.waitMs ?? null;
  const closers: Array<() => Promise<unknown> | void> = [];

  /** A `ws` WebSocket that counts the bytes it receives into `node`'s report. */
  const countingSocket = (node: number) =>
    class CountingWebSocket extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        super(address, protocols);
        this.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
          const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length;
          reports[node]!.bytes += size;
        });
      }
    };

  /**
   * Collects the stamps of a value (titles anywhere in it, aggregates' `_max.position`), skipping
   * objects this subscription already walked: a patched list keeps its unchanged rows' objects,
   * so only new rows cost anything (the bench's clients must not eat the CPU the nodes need).
   */
  const stampsIn = (value: unknown, epochMs: number, out: number[], walked: WeakSet<object>): void => {
    if (!value || typeof value !== "object" || walked.has(value)) return;
    walked.add(value);
    if (Array.isArray(value)) {
      for (const item of value) stampsIn(item, epochMs, out, walked);
      return;
    }
    const record = value as Record<string, unknown>;
    const stamp = stampOf(record.title);
    if (stamp !== null) out.push(stamp);
    const max = record._max as { position?: unknown } | undefined;
    if (max && typeof max.position === "number" && max.position > 0) out.push((epochMs + max.position) * 1000);
    for (const key in record) {
      const child = record[key];
      if (child && typeof child === "object") stampsIn(child, epochMs, out, walked);
    }
  };

  /** A value handler for one subscription: the first value sets what it holds, later ones time what is new. */
  const watcher = (node: number, epochMs: number, firstValue: () => void) => {
    const seen = new Set<number>();
    const walked = new WeakSet<object>();
    let first = true;
    return (value: unknown) => {
      const received = nowMicros();
      const report = reports[node]!;
      report.messages += 1;
      const stamps: number[] = [];
      stampsIn(value, epochMs, stamps, walked);
      for (const stamp of stamps) {
        if (seen.has(stamp)) continue;
        seen.add(stamp);
        if (!first) {
          report.stampsMs.push(stamp / 1000);
          report.latenciesMs.push((received - stamp) / 1000);
        }
      }
      if (first) {
        first = false;
        firstValue();
      }
    };
  };

  async function start(cfg: LiveClientsConfig): Promise<void> {
    config = cfg;
    reports = cfg.nodes.map(emptyReport);
    const firsts: Promise<void>[] = [];
    for (const { user, node, specs } of cfg.users) {
      const endpoint = cfg.nodes[node]!;
      const WebSocketClass = countingSocket(node) as unknown as typeof globalThis.WebSocket;
      if (cfg.system === "tether") {
        const client = createTetherClient<AnyRouter>({
          url: `${endpoint.url}/trpc`,
          subscriptions: { transport: "ws", url: endpoint.wsUrl, WebSocket: WebSocketClass, connectionParams: { user }, lazyCloseMs: false },
          queryClient: new QueryClient({ defaultOptions: { queries: { retry: false } } }),
          reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 },
          environment: null,
        });
        for (const spec of specs) {
          const path = `q.${spec.name}`;
          const queryKey = [path.split("."), { input: spec.input, type: "query" }];
          const held = client.live.acquire({ path, input: spec.input, queryKey, hash: liveHash(queryKey) });
          firsts.push(
            new Promise<void>((resolve) => {
              const take = watcher(node, cfg.epochMs, resolve);
              let version = -1;
              held.query.subscribe(() => {
                const state = held.query.state;
                if (state.status === "error" && errors.length < 20) errors.push(String(state.error));
                if (state.status !== "live" || state.version === version) return;
                version = state.version;
                take(held.query.serverValue()?.value);
              });
            }),
          );
          closers.push(() => held.release());
        }
        closers.push(() => client.close());
      } else {
        const ws = createWSClient({ url: endpoint.wsUrl, WebSocket: WebSocketClass, connectionParams: { user }, retryDelayMs: () => 200 });
        const trpc = getUntypedClient(createTRPCClient<AnyRouter>({ links: [wsLink({ client: ws })] }));
        for (const spec of specs) {
          firsts.push(
            new Promise<void>((resolve) => {
              const take = watcher(node, cfg.epochMs, resolve);
              const sub = trpc.subscription("live", spec, {
                onData: (value: unknown) => take(value),
                onError: (error: unknown) => void (errors.length < 20 && errors.push(String(error))),
              });
              closers.push(() => sub.unsubscribe());
            }),
          );
        }
        closers.push(() => ws.close());
      }
    }
    await Promise.all(firsts);
    cpu0 = process.cpuUsage();
    wait0 = schedstat()?.waitMs ?? null;
  }

  function report(): ClientsReport {
    const cpu = process.cpuUsage(cpu0);
    cpu0 = process.cpuUsage();
    const wait = schedstat()?.waitMs ?? null;
    const runQueueWaitMs = wait !== null && wait0 !== null ? wait - wait0 : null;
    wait0 = wait;
    const out = { nodes: reports, cpuMs: (cpu.user + cpu.system) / 1000, runQueueWaitMs, errors: errors.splice(0) };
    reports = (config?.nodes ?? []).map(emptyReport);
    return out;
  }

  process.on("message", (raw) => {
    const message = raw as { id: number; op: "start" | "report"; config?: LiveClientsConfig };
    void (async () => {
      try {
        const result = message.op === "start" ? await start(message.config!) : report();
        process.send!({ id: message.id, result: result ?? null });
      } catch (error) {
        process.send!({ id: message.id, error: (error as Error).stack ?? String(error) });
      }
    })();
  });
  process.once("SIGTERM", () => {
    void (async () => {
      const timer = setTimeout(() => process.exit(0), 2_000);
      timer.unref();
      await Promise.allSettled(closers.map(async (close) => close()));
      process.exit(0);
    })();
  });
  // The bench went away (killed, crashed): do not linger as an orphan.
  process.once("disconnect", () => process.exit(0));
  process.send!({ ready: true });
}

if (process.env.LIVE_CLIENTS) await main();
