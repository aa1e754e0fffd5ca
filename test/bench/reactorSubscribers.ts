/**
 * N in-process subscribers for the reactor bench: each consumes one subscription stream from the
 * server-side caller (as test/live.test.ts does), keeps its current data the way a client does
 * (full values, list patches checked for version gaps) and timestamps the moment the row of the
 * current write becomes visible in its data.
 */
import { applyListPatch, type LiveMessage } from "@tether/protocol";
import { now } from "./harness.ts";

type Row = Record<string, unknown>;

/** "tether": tracked LiveMessage envelopes from `$live`; "baseline": the query's rows as such. */
export type StreamKind = "tether" | "baseline";

interface Subscriber {
  readonly controller: AbortController;
  data: Row[] | undefined;
  version: number;
  messages: number;
  /** A target of the current probe that has not seen its row yet. */
  awaiting: boolean;
  ended: boolean;
  error: unknown;
  first: Promise<void>;
  done: Promise<void>;
}

interface Probe {
  title: string;
  t0: number;
  remaining: number;
  samples: number[];
  resolve: () => void;
}

export type OpenStream = (index: number, signal: AbortSignal) => Promise<AsyncIterable<unknown>>;

export class SubscriberPool {
  private readonly subs: Subscriber[] = [];
  private probe: Probe | null = null;
  /** Messages received by all subscribers. */
  messages = 0;
  /** Stream failures (errors, version gaps). */
  failures: unknown[] = [];

  constructor(private readonly kind: StreamKind) {}

  get size(): number {
    return this.subs.length;
  }

  /** Opens `count` subscriptions `chunk` at a time; resolves when each has its first message. */
  async open(count: number, chunk: number, openStream: OpenStream): Promise<void> {
    for (let start = 0; start < count; start += chunk) {
      const batch: Promise<void>[] = [];
      for (let i = start; i < Math.min(count, start + chunk); i++) batch.push(this.openOne(i, openStream));
      await Promise.all(batch);
    }
  }

  private async openOne(index: number, openStream: OpenStream): Promise<void> {
    const controller = new AbortController();
    let firstSeen: () => void = () => undefined;
    let firstFailed: (error: unknown) => void = () => undefined;
    const sub: Subscriber = {
      controller,
      data: undefined,
      version: 0,
      messages: 0,
      awaiting: false,
      ended: false,
      error: undefined,
      first: new Promise<void>((resolve, reject) => {
        firstSeen = resolve;
        firstFailed = reject;
      }),
      done: Promise.resolve(),
    };
    this.subs.push(sub);
    const stream = await openStream(index, controller.signal);
    sub.done = (async () => {
      try {
        for await (const value of stream) {
          this.receive(sub, value);
          if (sub.messages === 1) firstSeen();
        }
      } catch (error) {
        if (!controller.signal.aborted) {
          sub.error = error;
          this.failures.push(error);
        }
      } finally {
        sub.ended = true;
        firstFailed(sub.error ?? new Error("stream ended before its first message"));
      }
    })();
    await sub.first;
  }

  private receive(sub: Subscriber, value: unknown): void {
    if (this.kind === "tether") {
      // The server-side caller yields tRPC's tracked envelope [id, data, symbol].
      const message = (value as [string, LiveMessage])[1];
      if (message.kind === "full") sub.data = message.data as Row[];
      else if (message.kind === "patch") {
        if (message.version !== sub.version + 1) throw new Error(`version gap: had ${sub.version}, got patch ${message.version}`);
        sub.data = applyListPatch(sub.data ?? [], message.patch);
      }
      sub.version = message.version;
    } else {
      sub.data = value as Row[];
    }
    sub.messages += 1;
    this.messages += 1;
    const probe = this.probe;
    if (probe && sub.awaiting && sub.data?.some((row) => row.title === probe.title)) {
      probe.samples.push(now() - probe.t0);
      sub.awaiting = false;
      probe.remaining -= 1;
      if (probe.remaining === 0) probe.resolve();
    }
  }

  /**
   * Arms a probe for a write of a row titled `title`: `t0` is taken now, just before the caller
   * runs the mutation. Resolves with one latency sample (ms) per target once every target's data
   * holds the row; rejects after `timeoutMs` with the samples so far.
   */
  expect(title: string, targets: "all" | readonly number[], timeoutMs: number): { seen: Promise<number[]> } {
    const indices = targets === "all" ? null : targets;
    let count = 0;
    if (indices === null) {
      for (const sub of this.subs) sub.awaiting = true;
      count = this.subs.length;
    } else {
      for (const i of indices) {
        const sub = this.subs[i];
        if (sub && !sub.awaiting) {
          sub.awaiting = true;
          count += 1;
        }
      }
    }
    const seen = new Promise<number[]>((resolve, reject) => {
      const samples: number[] = [];
      const timer = setTimeout(() => {
        this.probe = null;
        for (const sub of this.subs) sub.awaiting = false;
        reject(new Error(`write "${title}": ${probe.remaining} of ${count} subscribers did not see it within ${timeoutMs} ms`));
      }, timeoutMs);
      const probe: Probe = {
        title,
        t0: now(),
        remaining: count,
        samples,
        resolve: () => {
          clearTimeout(timer);
          this.probe = null;
          resolve(samples);
        },
      };
      this.probe = probe;
      if (count === 0) probe.resolve();
    });
    return { seen };
  }

  /** Aborts every subscription (as a transport does when clients leave) and waits for them to end. */
  async closeAll(timeoutMs = 30_000): Promise<void> {
    for (const sub of this.subs) sub.controller.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.subs.map((s) => s.done)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    this.subs.length = 0;
  }

  /** Subscriptions whose stream is still open. */
  openCount(): number {
    let open = 0;
    for (const sub of this.subs) if (!sub.ended) open += 1;
    return open;
  }
}
