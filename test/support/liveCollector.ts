import { applyListPatch, type LiveMessage } from "@tether/protocol";

/**
 * Applies a live stream the way a client does, checking versions, and records everything.
 * `controller` is the AbortController whose signal the stream was opened with: stopping aborts it,
 * as a transport does when a client leaves (an async generator's return() would wait for the
 * pending next() forever).
 */
export function collectLive<T = unknown>(stream: AsyncIterable<unknown>, controller?: AbortController) {
  const iterator = stream[Symbol.asyncIterator]();
  const state = {
    messages: [] as LiveMessage[],
    ids: [] as string[],
    data: undefined as T | undefined,
    version: 0,
    error: undefined as unknown,
    ended: false,
  };
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };
  void (async () => {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        const [id, message] = unwrapTracked(next.value);
        state.ids.push(id);
        state.messages.push(message);
        if (message.kind === "full") state.data = message.data as T;
        else if (message.kind === "patch") {
          if (message.version !== state.version + 1) throw new Error(`version gap: had ${state.version}, got patch ${message.version}`);
          state.data = applyListPatch(state.data as Record<string, unknown>[], message.patch) as T;
        }
        state.version = message.version;
        notify();
      }
    } catch (error) {
      state.error = error;
    } finally {
      state.ended = true;
      notify();
    }
  })();
  return {
    state,
    lastId: () => state.ids[state.ids.length - 1] ?? null,
    until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
      if (predicate()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          } else if (state.ended) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(state.error ?? new Error("stream ended"));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting; last data ${JSON.stringify(state.data)?.slice(0, 300)}; error ${String(state.error)}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    async stop() {
      if (controller) {
        controller.abort();
        await new Promise<void>((resolve) => {
          if (state.ended) return resolve();
          waiters.add(() => state.ended && resolve());
        });
      } else {
        await iterator.return?.();
      }
    },
  };
}

function unwrapTracked(value: unknown): [string, LiveMessage] {
  // Server-side callers yield tRPC's tracked envelope [id, data, symbol]; clients yield { id, data }.
  if (Array.isArray(value)) return [String(value[0]), value[1] as LiveMessage];
  const v = value as { id: string; data: LiveMessage };
  return [v.id, v.data];
}

/**
 * Opens a live query with `open(signal)` (e.g. `(signal) => caller(ctx, signal).$live({ path, input })`),
 * collects it, registers its stop in `stops`, and waits for its first message or its error.
 */
export async function openLive<T>(open: (signal: AbortSignal) => Promise<unknown>, stops: Array<() => Promise<void>>) {
  const controller = new AbortController();
  const collector = collectLive<T>((await open(controller.signal)) as AsyncIterable<unknown>, controller);
  stops.push(collector.stop);
  await collector.until(() => collector.state.messages.length > 0 || collector.state.error !== undefined);
  return collector;
}
