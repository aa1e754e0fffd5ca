/**
 * The handler's promise, or — once `signal` has aborted (cancel, timeout, shutdown) and the handler
 * has not settled `graceMs` later — a rejection with the abort's reason. A handler that ignores its
 * signal otherwise held its worker slot for good: with `concurrency: 1`, one cancelled hung job
 * stopped every later job of its name on that node. JavaScript cannot stop the handler; whatever it
 * does later is dropped (its job is already settled).
 */
export function settleOrAbandon<T>(work: Promise<T>, signal: AbortSignal, graceMs: number, onAbandon: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      timer = setTimeout(() => {
        onAbandon();
        reject(signal.reason ?? new Error("job aborted"));
      }, graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    });
  });
}
