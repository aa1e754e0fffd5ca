import { TRPCError } from "@trpc/server";
import { systemClock, type Clock, type ClockTimer } from "@tether/protocol";
import type { CapturedRow, ChangeFeed, FeedEvent } from "../feed/index.ts";
import type { Logger } from "../log/index.ts";
import { sessionExpiry, type IdentityLike } from "./identity.ts";

/**
 * What Tether's procedures need from an auth binding to keep long-lived calls honest: a live
 * subscription (or a WebSocket's context) was authenticated once, when it started; the session
 * can end long before the subscription does.
 */
export interface SessionGuard {
  /** Throws UNAUTHORIZED when the context's session has ended (a WebSocket context outlives its session). */
  assertActive(ctx: unknown): void;
  /**
   * A live subscription of `ctx` starts: returns a signal aborted (its `reason` a TRPCError
   * UNAUTHORIZED) when the session ends, or null when the context has no session. Released when
   * `until` aborts.
   */
  admit(ctx: unknown, until: AbortSignal): AbortSignal | null;
  /** Sees every change-feed event in commit order, before the reactor does. */
  onFeedEvent(event: FeedEvent): void | Promise<void>;
  /** How to start the change feed that feeds `onFeedEvent` (called when there is a session to watch). */
  attach?(startFeed: () => Promise<void>): void;
}

export interface LiveSessionsOptions {
  /** The session table (as the change feed names it) and its columns. */
  table: string;
  idColumn?: string;
  expiresAtColumn?: string;
  /** Current expiry of sessions by id (missing = gone): used after a feed resync. */
  lookup(ids: string[]): Promise<Map<string, Date>>;
  log?: Logger;
  /** What "now" and the expiry timers run on. Default: the system clock (tests: a ManualClock). */
  clock?: Clock;
}

interface Holder {
  end(error: TRPCError): void;
}

interface Entry {
  readonly id: string;
  expiresAt: number;
  readonly holders: Set<Holder>;
  timer: ClockTimer | null;
  ended: TRPCError | null;
}

/** setTimeout's largest delay (~24.8 days); longer expiries re-arm. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The sessions this node has long-lived business with — live subscriptions and WebSocket
 * connections — and the end of each: the change feed tells when a session row is deleted
 * (sign-out, revocation, user deleted) or its `expiresAt` moves into the past; a timer fires at
 * `expiresAt` itself. No polling. Ending a session aborts its subscriptions with UNAUTHORIZED and
 * makes later calls on its WebSocket fail the same way.
 */
export class LiveSessions implements SessionGuard {
  private readonly entries = new Map<string, Entry>();
  private readonly feedStarters: Array<() => Promise<void>> = [];
  private readonly idColumn: string;
  private readonly expiresAtColumn: string;
  private readonly clock: Clock;

  constructor(private readonly options: LiveSessionsOptions) {
    this.clock = options.clock ?? systemClock;
    this.idColumn = options.idColumn ?? "id";
    this.expiresAtColumn = options.expiresAtColumn ?? "expiresAt";
  }

  /** Sessions being watched (for tests and stats). */
  get size(): number {
    return this.entries.size;
  }

  attach(startFeed: () => Promise<void>): void {
    this.feedStarters.push(startFeed);
  }

  assertActive(ctx: unknown): void {
    const session = (ctx as IdentityLike | null)?.session;
    if (!session) return;
    if (sessionExpiry(session) <= this.clock.now()) throw unauthorized("session expired");
    const ended = this.entries.get(session.id)?.ended;
    if (ended) throw ended;
  }

  admit(ctx: unknown, until: AbortSignal): AbortSignal | null {
    const session = (ctx as IdentityLike | null)?.session;
    if (!session) return null;
    this.assertActive(ctx);
    const controller = new AbortController();
    this.hold(session, until, { end: (error) => controller.abort(error) });
    return controller.signal;
  }

  /**
   * Keeps watching `session` until `until` aborts (a WebSocket connection's lifetime): calls on a
   * context holding it fail once it ends.
   */
  hold(session: { id: string; expiresAt: Date | string | number }, until: AbortSignal, holder: Holder = { end: () => undefined }): void {
    if (until.aborted) return;
    let entry = this.entries.get(session.id);
    if (!entry) {
      entry = { id: session.id, expiresAt: sessionExpiry(session), holders: new Set(), timer: null, ended: null };
      this.entries.set(session.id, entry);
      this.arm(entry);
      // The feed is what tells us the session ended; make sure it runs (idempotent).
      for (const start of this.feedStarters) {
        start().catch((error: unknown) => this.options.log?.error({ err: error }, "could not start the change feed for session watching"));
      }
    }
    if (entry.ended) {
      holder.end(entry.ended);
      return;
    }
    entry.holders.add(holder);
    const current = entry;
    until.addEventListener("abort", () => this.release(current, holder), { once: true });
  }

  async onFeedEvent(event: FeedEvent): Promise<void> {
    if (this.entries.size === 0) return;
    if (event.type === "resync") {
      // Changes were trimmed before we read them: ask the database where every session stands.
      await this.recheck();
      return;
    }
    for (const change of event.changes) {
      if (change.table !== this.options.table) continue;
      if (change.op === "TRUNCATE") {
        for (const entry of this.entries.values()) this.end(entry, "session ended");
        continue;
      }
      const row = change.op === "DELETE" ? change.old : change.new;
      const id = row?.[this.idColumn];
      const entry = typeof id === "string" ? this.entries.get(id) : undefined;
      if (!entry || entry.ended) continue;
      if (change.op === "DELETE") {
        this.end(entry, "session ended (signed out or revoked)");
        continue;
      }
      const expiresAt = parseTimestamp(row?.[this.expiresAtColumn]);
      if (expiresAt === null) continue; // column left out of the log: the timer still holds
      entry.expiresAt = expiresAt;
      if (expiresAt <= this.clock.now()) this.end(entry, "session expired");
      else this.arm(entry); // refreshed (better-auth extends sessions in use)
    }
  }

  /** Ends every watched session (shutdown). */
  close(): void {
    for (const entry of this.entries.values()) this.end(entry, "server shutting down");
    this.entries.clear();
  }

  private async recheck(): Promise<void> {
    const ids = [...this.entries.values()].filter((e) => !e.ended).map((e) => e.id);
    if (ids.length === 0) return;
    let current: Map<string, Date>;
    try {
      current = await this.options.lookup(ids);
    } catch (error) {
      // Cannot tell: fail closed, clients re-authenticate.
      this.options.log?.warn({ err: error }, "session recheck failed; ending watched sessions");
      current = new Map();
    }
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (!entry || entry.ended) continue;
      const expiresAt = current.get(id);
      if (!expiresAt) this.end(entry, "session ended (signed out or revoked)");
      else if (expiresAt.getTime() <= this.clock.now()) this.end(entry, "session expired");
      else {
        entry.expiresAt = expiresAt.getTime();
        this.arm(entry);
      }
    }
  }

  private arm(entry: Entry): void {
    if (entry.timer) this.clock.clearTimeout(entry.timer);
    const delay = Math.max(0, entry.expiresAt - this.clock.now());
    entry.timer = this.clock.setTimeout(
      () => {
        entry.timer = null;
        if (entry.expiresAt <= this.clock.now()) this.end(entry, "session expired");
        else this.arm(entry);
      },
      Math.min(delay, MAX_TIMER_MS),
      { unref: true },
    );
  }

  private end(entry: Entry, message: string): void {
    if (entry.ended) return;
    entry.ended = unauthorized(message);
    if (entry.timer) this.clock.clearTimeout(entry.timer);
    entry.timer = null;
    for (const holder of entry.holders) holder.end(entry.ended);
    // Kept while WebSocket contexts still hold it, so their next call is refused too.
    if (entry.holders.size === 0) this.entries.delete(entry.id);
  }

  private release(entry: Entry, holder: Holder): void {
    entry.holders.delete(holder);
    if (entry.holders.size > 0) return;
    if (entry.timer) this.clock.clearTimeout(entry.timer);
    if (this.entries.get(entry.id) === entry) this.entries.delete(entry.id);
  }
}

function unauthorized(message: string): TRPCError {
  return new TRPCError({ code: "UNAUTHORIZED", message });
}

/** A captured `timestamp(3)` (jsonb, no zone: Prisma stores UTC) or `timestamptz` value, in ms. */
export function parseTimestamp(value: CapturedRow[string]): number | null {
  if (typeof value !== "string") return null;
  const zoned = /(?:Z|[+-]\d\d(?::?\d\d)?)$/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(zoned);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * `feed` as the reactor should see it: every event passes `guard.onFeedEvent` first, so a session's
 * end is acted on before any change committed after it is pushed to that session's subscribers.
 */
export function withSessionWatch(feed: ChangeFeed, guard: SessionGuard, log?: Logger): ChangeFeed {
  return {
    subscribe: (listener, options) =>
      feed.subscribe(async (event) => {
        try {
          await guard.onFeedEvent(event);
        } catch (error) {
          log?.error({ err: error }, "session watcher failed on a feed event");
        }
        return listener(event);
      }, options),
    currentPosition: () => feed.currentPosition(),
    trim: (retention) => feed.trim(retention),
    stats: () => feed.stats(),
    close: () => feed.close(),
  };
}
