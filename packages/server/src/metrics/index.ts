import client from "prom-client";
import type { JobFinishedListener, QueueDepth } from "../jobs/index.ts";
import type { ReactorStats } from "../reactor/index.ts";

/** Anything that can report numbers at scrape time. */
export interface MetricSources {
  reactor?: () => Omit<ReactorStats, "position">;
  transport?: () => { wsConnections: number; sseConnections: number; slowConsumersTerminated: number };
  feed?: () => { deliveredTransactions: number; reads: number; resyncs: number; listenerReconnects: number };
  presence?: () => { rooms: number; members: number };
  /** `tether.stats.crdt()` */
  crdt?: () => { streamedDocs: number; streamSubscribers: number; pushes: number; compactions: number; reloads: number };
  /** `tether.jobRuntime`: queue depths (read from pg-boss at scrape time) and each attempt's duration. */
  jobs?: {
    queueDepths(): Promise<QueueDepth[]>;
    onFinished(listener: JobFinishedListener): () => void;
    stats(): { enqueued: number; running: number; progressWrites: number };
  };
}

export interface TetherMetrics {
  readonly registry: client.Registry;
  /** Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * Prometheus metrics read from the sources at scrape time (no bookkeeping on the hot path).
 * Counters are exposed as gauges of the running totals the sources keep.
 */
export function createMetrics(sources: MetricSources, options: { prefix?: string; defaultMetrics?: boolean } = {}): TetherMetrics {
  const registry = new client.Registry();
  const prefix = options.prefix ?? "tether_";
  if (options.defaultMetrics) client.collectDefaultMetrics({ register: registry, prefix });
  const gauge = (name: string, help: string, read: () => number | null | undefined) =>
    new client.Gauge({
      name: prefix + name,
      help,
      registers: [registry],
      collect() {
        const value = read();
        if (value !== null && value !== undefined) this.set(value);
      },
    });
  const { reactor, transport, feed, presence, crdt, jobs } = sources;
  if (reactor) {
    gauge("live_subscriptions", "Live query subscriptions held by this node", () => reactor().subscriptions);
    gauge("query_groups", "Distinct live query groups (path, input, scope)", () => reactor().groups);
    gauge("query_executions_total", "Live query executions, first runs included", () => reactor().executions);
    gauge("query_reexecutions_total", "Live query re-executions caused by changes or resyncs", () => reactor().reExecutions);
    gauge("invalidations_total", "Query groups invalidated by a change", () => reactor().invalidations);
    gauge("messages_sent_total", "Live messages queued to subscribers", () => reactor().messagesSent);
    gauge("query_timeouts_total", "Live query executions abandoned for taking too long", () => reactor().timeouts);
    gauge("feed_lag_ms", "Time from the last processed change's write to its processing", () => reactor().feedLagMs);
  }
  if (transport) {
    gauge("ws_connections", "Open WebSocket connections", () => transport().wsConnections);
    gauge("sse_connections", "Open SSE streams", () => transport().sseConnections);
    gauge("slow_consumers_terminated_total", "WebSocket clients cut off for not reading", () => transport().slowConsumersTerminated);
  }
  if (feed) {
    gauge("feed_transactions_delivered_total", "Transactions delivered by the change feed", () => feed().deliveredTransactions);
    gauge("feed_reads_total", "Reads of the change log", () => feed().reads);
    gauge("feed_resyncs_total", "Resyncs sent to feed subscribers behind the trimmed log", () => feed().resyncs);
    gauge("feed_listener_reconnects_total", "Reconnects of the LISTEN connection", () => feed().listenerReconnects);
  }
  if (presence) {
    gauge("presence_rooms", "Presence rooms open on this node", () => presence().rooms);
    gauge("presence_members", "Presence clientIds with an open join on this node", () => presence().members);
  }
  if (crdt) {
    gauge("crdt_streamed_docs", "Collaborative documents with stream subscribers on this node", () => crdt().streamedDocs);
    gauge("crdt_stream_subscribers", "$crdt.stream subscribers on this node", () => crdt().streamSubscribers);
    gauge("crdt_pushes_total", "Client updates imported by $crdt.push on this node", () => crdt().pushes);
    gauge("crdt_compactions_total", "Update logs compacted into their document's snapshot", () => crdt().compactions);
    gauge("crdt_reloads_total", "Documents reloaded because an update was compacted away before this node fetched it", () => crdt().reloads);
  }
  if (jobs) {
    new client.Gauge({
      name: prefix + "job_queue_depth",
      help: "Jobs per job name and state (queued: waiting or deferred; active: running on some node; failed: kept failed jobs)",
      labelNames: ["job", "state"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const queue of await jobs.queueDepths()) {
          this.set({ job: queue.name, state: "queued" }, queue.queued);
          this.set({ job: queue.name, state: "deferred" }, queue.deferred);
          this.set({ job: queue.name, state: "active" }, queue.active);
          this.set({ job: queue.name, state: "failed" }, queue.failed);
        }
      },
    });
    // Observed as attempts end on this node (the one piece of job bookkeeping on the hot path).
    const durations = new client.Histogram({
      name: prefix + "job_duration_seconds",
      help: "Duration of job attempts run on this node, by job name and outcome",
      labelNames: ["job", "outcome"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900],
      registers: [registry],
    });
    jobs.onFinished(({ name, outcome, seconds }) => durations.observe({ job: name, outcome }, seconds));
    gauge("jobs_enqueued_total", "Jobs enqueued through this node", () => jobs.stats().enqueued);
    gauge("jobs_running", "Job handlers running on this node", () => jobs.stats().running);
    gauge("job_progress_writes_total", "Progress rows written (after coalescing) on this node", () => jobs.stats().progressWrites);
  }
  return { registry, render: () => registry.metrics(), contentType: registry.contentType };
}
