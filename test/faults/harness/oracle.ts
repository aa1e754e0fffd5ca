/**
 * The oracle every scenario ends with. Writers record each acknowledged mutation and each
 * rolled-back attempt; subscribers record every value they held. After the writers stop, a barrier
 * write that every subscriber must see; then each subscriber must equal a fresh query
 * (order-sensitive), hold every acknowledged row, and never have shown a rolled-back one.
 */
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import { expect } from "vitest";
import type { TestRouter } from "../../fixtures/app.ts";
import { waitFor } from "../../support/waitFor.ts";
import type { Endpoint, Row, Subscriber } from "./subscribers.ts";

/** The title the fixture's `addThenFail` writes before it throws: it must never be delivered. */
export const ROLLED_BACK_TITLE = "never";

export interface WriteLog {
  /** Acknowledged adds: title → { id, ack time }. */
  acked: Map<string, { id: string; ackAt: number }>;
  /** Acknowledged setDone calls, last per id (only meaningful when nothing unknown followed). */
  done: Map<string, boolean>;
  /** Ids whose last write failed without a verdict (it may or may not have committed). */
  uncertain: Set<string>;
  rolledBack: number;
  /** Calls that failed without an answer (node or database down): neither acked nor lost. */
  failed: number;
  /** Answers with a 5xx other than the deliberate rollback (reported, and asserted by fuzzing). */
  serverErrors: string[];
}

/** A plain tRPC HTTP client; each call goes to `endpoint()` (httpLink takes only a fixed URL). */
export function httpClient(endpoint: () => Endpoint, user = "writer") {
  const PLACEHOLDER = "http://tether-node";
  return createTRPCClient<TestRouter>({
    links: [
      httpLink({
        url: `${PLACEHOLDER}/trpc`,
        headers: { "x-user": user },
        fetch: (input, init) => fetch(String(input).replace(PLACEHOLDER, endpoint().url), init as RequestInit),
      }),
    ],
  });
}

/**
 * `writers` loops writing into `projectId` through the nodes in turn: adds (unique titles),
 * setDone on earlier rows, and `addThenFail` (rolled back). Stops when `stop()` is called.
 */
export function startWriters(nodes: () => Endpoint[], projectId: string, writers: number, options: { pauseMs?: number } = {}) {
  const log: WriteLog = { acked: new Map(), done: new Map(), uncertain: new Set(), rolledBack: 0, failed: 0, serverErrors: [] };
  let running = true;
  let turn = 0;
  const client = httpClient(() => nodes()[turn++ % nodes().length]!);
  const loops = Array.from({ length: writers }, async (_, w) => {
    // Each writer flips only its own rows: concurrent setDone calls on one row could commit in
    // another order than they were acknowledged, and the oracle would expect the wrong value.
    const ids: string[] = [];
    for (let n = 0; running; n += 1) {
      const roll = (n * 7 + w) % 10;
      try {
        if (roll === 9) {
          try {
            await client.tasks.addThenFail.mutate({ projectId });
          } catch (error) {
            // The fixture throws a plain Error after its write: a 500 by design, always rolled back.
            if (error instanceof TRPCClientError && error.data?.code === "INTERNAL_SERVER_ERROR") log.rolledBack += 1;
            else throw error;
          }
        } else if (roll >= 7 && ids.length > 0) {
          const id = ids[(n * 31) % ids.length]!;
          const done = n % 2 === 0;
          try {
            await client.tasks.setDone.mutate({ id, done });
            if (!log.uncertain.has(id)) log.done.set(id, done);
          } catch (error) {
            log.uncertain.add(id);
            throw error;
          }
        } else {
          const title = `w${w}-${n}`;
          const row = await client.tasks.add.mutate({ projectId, title });
          log.acked.set(title, { id: row.id, ackAt: Date.now() });
          ids.push(row.id);
        }
      } catch (error) {
        log.failed += 1;
        const status = (error as TRPCClientError<TestRouter>).data?.httpStatus;
        if (status && status >= 500) log.serverErrors.push(`${(error as Error).message}`);
        // A node or the database is down: back off a little, try the next node.
        await new Promise((r) => setTimeout(r, 50));
      }
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  });
  return {
    log,
    /** Stops the loops and waits for their last calls. */
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

export interface Verdict {
  subscribers: number;
  converged: number;
  ackedWrites: number;
  lost: number;
  rolledBackAttempts: number;
  rolledBackSeen: number;
  maxStalenessMs: number;
  p50StalenessMs: number;
  failedCalls: number;
  faults: string[];
  /** Server errors subscribers got and retried, by message (e.g. a re-run failing while the database restarts). */
  subscriptionErrors: Record<string, number>;
}

/**
 * Barrier, then the checks. `fresh` reads the list as a new client would (a query on a node).
 * Returns the numbers for docs/reliability.md; the assertions are made here.
 */
export async function checkConvergence(
  nodes: () => Endpoint[],
  projectId: string,
  subscribers: Subscriber[],
  log: WriteLog,
  options: { timeoutMs?: number } = {},
): Promise<Verdict> {
  const client = httpClient(() => nodes()[0]!);
  const barrier = `barrier-${Date.now()}`;
  // The barrier may need a retry while a node is still coming back.
  await waitFor("the barrier write", async () => {
    try {
      await client.tasks.add.mutate({ projectId, title: barrier });
      return true;
    } catch {
      return false;
    }
  }, { timeoutMs: options.timeoutMs ?? 60_000 });
  await waitFor(
    `every subscriber to see ${barrier}`,
    () => subscribers.every((s) => s.firstSeen.has(barrier)),
    { timeoutMs: options.timeoutMs ?? 60_000 },
  ).catch((error: Error) => {
    const behind = subscribers.filter((s) => !s.firstSeen.has(barrier)).map((s) => `${s.name} (${s.values} values; ${[...s.faults, ...s.errors].slice(-2).join("; ")})`);
    throw new Error(`${error.message}; behind: ${behind.join(", ")}`);
  });
  const fresh = (await client.tasks.byProject.query({ projectId })) as unknown as Row[];

  const freshTitles = new Set(fresh.map((r) => r.title));
  const lost = [...log.acked.keys()].filter((t) => !freshTitles.has(t));
  const wrongDone = [...log.done].filter(([id, done]) => !log.uncertain.has(id) && fresh.find((r) => r.id === id)?.done !== done);
  const converged = subscribers.filter((s) => JSON.stringify(s.data()) === JSON.stringify(fresh));
  const sawRolledBack = subscribers.filter((s) => s.everSeen.has(ROLLED_BACK_TITLE));

  const staleness: number[] = [];
  for (const [title, { ackAt }] of log.acked) {
    let worst = 0;
    for (const s of subscribers) worst = Math.max(worst, (s.firstSeen.get(title) ?? Infinity) - ackAt);
    if (Number.isFinite(worst)) staleness.push(worst);
  }
  staleness.sort((a, b) => a - b);
  const verdict: Verdict = {
    subscribers: subscribers.length,
    converged: converged.length,
    ackedWrites: log.acked.size,
    lost: lost.length,
    rolledBackAttempts: log.rolledBack,
    rolledBackSeen: sawRolledBack.length,
    maxStalenessMs: staleness.at(-1) ?? 0,
    p50StalenessMs: staleness[Math.floor(staleness.length / 2)] ?? 0,
    failedCalls: log.failed,
    faults: subscribers.flatMap((s) => s.faults.map((f) => `${s.name}: ${f}`)),
    subscriptionErrors: {},
  };
  for (const error of subscribers.flatMap((s) => s.errors)) verdict.subscriptionErrors[error] = (verdict.subscriptionErrors[error] ?? 0) + 1;

  const diverged = subscribers.filter((s) => !converged.includes(s)).map((s) => `${s.name}: ${JSON.stringify(s.data()?.map((r) => r.title)).slice(0, 200)}`);
  expect(diverged, `subscribers differing from a fresh query of ${fresh.length} rows`).toEqual([]);
  expect(verdict.faults, "protocol violations seen by subscribers").toEqual([]);
  expect(lost, "acknowledged adds missing from the database").toEqual([]);
  expect(wrongDone, "acknowledged setDone calls not reflected").toEqual([]);
  expect(sawRolledBack.map((s) => s.name), "subscribers that were shown a rolled-back row").toEqual([]);
  return verdict;
}
