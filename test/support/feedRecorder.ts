import type { ChangeFeed, FeedEvent, FeedSubscription } from "@tether/server";

/** Subscribes to a feed and records every event, with a helper to wait for a condition. */
export async function recordFeed(feed: ChangeFeed, after?: string) {
  const events: FeedEvent[] = [];
  const waiters = new Set<() => void>();
  const subscription: FeedSubscription = await feed.subscribe(
    (event) => {
      events.push(event);
      for (const w of waiters) w();
    },
    after === undefined ? {} : { after },
  );
  const transactions = () => events.filter((e) => e.type === "transaction");
  const changes = () => transactions().flatMap((e) => e.changes);
  return {
    events,
    subscription,
    transactions,
    changes,
    /** Resolves when predicate holds; rejects after timeoutMs with what was received. */
    until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
      if (predicate()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; received ${JSON.stringify(events.map((e) => e.type === "transaction" ? e.changes.map((c) => `${c.op} ${c.table} ${JSON.stringify(c.pk)}`) : e.type))}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
  };
}
