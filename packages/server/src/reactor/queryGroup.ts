import { encodeEventId } from "@tether/protocol";
import type { Change } from "../feed/index.ts";
import type { SubscriberQueue } from "../queue/index.ts";
import type { MaintainedList } from "./incremental/index.ts";
import type { LiveMessage } from "./liveMessage.ts";
import type { ReadSet } from "./readSet.ts";

/** A message plus the id tRPC's `tracked()` sends, so a reconnecting client can resume. */
export interface LiveEvent {
  readonly id: string;
  readonly message: LiveMessage;
}

export interface Subscriber {
  readonly queue: SubscriberQueue<LiveEvent>;
  /** The next result must be sent in full even if unchanged (new subscriber, or it fell behind). */
  needsFull: boolean;
  /** Hash of the data the client already holds (from its lastEventId), if resuming. */
  resumeHash: string | null;
}

export interface GroupResult {
  readonly hash: string;
  /** Kept only while small enough (maxCachedResultBytes): needed for patches and late joiners. */
  readonly data: unknown;
  readonly serialized: string | null;
  readonly cached: boolean;
}

/**
 * A group's life, one state at a time (transitions in reactor.ts):
 *
 *   dirty ──flush──▶ running ──ok──▶ idle ──relevant change / sweep──▶ dirty
 *                     │  ▲  │
 *     change / sweep  │  │  └─timeout (or cancelled)─▶ backoff ──timer──▶ dirty
 *                     ▼  │
 *               rerun-pending ──ok──▶ dirty (runs again: something changed during the run)
 *
 * `closed` (no subscribers left, or a real error) is final from any state. A new group starts
 * `dirty` and runs at once. Only an `idle` group is judged against changes and only an `idle` group
 * with a cached result answers a new subscriber directly; in every other state the subscriber waits
 * for the next published result, which is fresher than anything held.
 */
export type GroupState = "idle" | "dirty" | "running" | "rerun-pending" | "backoff" | "closed";

/** One execution of a group's query; superseded (abandoned) when the group moves on without it. */
export interface GroupRun {
  readonly controller: AbortController;
  /** The reactor's feed position when the run started: everything at or before it is in its result. */
  readonly position: string;
  /** Runs the reactor had started before this one, plus one: later runs read later changes. */
  readonly seq: number;
}

/**
 * Subscriptions with identical (path, input, auth scope) share one QueryGroup: one execution,
 * one cached result, one version counter.
 */
export class QueryGroup {
  readonly subscribers = new Set<Subscriber>();
  readSet: ReadSet | null = null;
  result: GroupResult | null = null;
  version = 0;
  position = "";
  state: GroupState = "dirty";
  /** The execution whose outcome the group waits for (null unless running / rerun-pending). */
  run: GroupRun | null = null;
  /** Changes delivered while an execution ran: judged against its new ReadSet afterwards. */
  changesDuringRun: Change[] = [];
  /** Timed-out executions in a row (sets the backoff; reset by a successful run). */
  failedAttempts = 0;
  retryTimer: NodeJS.Timeout | null = null;
  executions = 0;
  /** How the cached result can be kept up to date without a run (null: it cannot; see incremental/). */
  maintained: MaintainedList | null = null;
  /**
   * While dirty: every change since the published result that may touch it, in commit order — what
   * an incremental update applies. Null when the next result must come from a run (a sweep, a
   * resync, a change during a run, or a group that is not maintained).
   */
  pendingChanges: Change[] | null = null;

  constructor(
    readonly key: string,
    readonly path: string,
    readonly input: unknown,
    /** Context of the subscriber that created the group; all members share its auth scope. */
    readonly ctx: unknown,
  ) {}

  get closed(): boolean {
    return this.state === "closed";
  }

  get running(): boolean {
    return this.state === "running" || this.state === "rerun-pending";
  }

  eventId(): string {
    return encodeEventId(this.version, this.result?.hash ?? "");
  }
}

