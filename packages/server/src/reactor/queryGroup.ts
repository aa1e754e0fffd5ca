import type { Change } from "../feed/index.ts";
import { AsyncQueue } from "./asyncQueue.ts";
import type { LiveMessage } from "./liveMessage.ts";
import type { ReadSet } from "./readSet.ts";

/** A message plus the id tRPC's `tracked()` sends, so a reconnecting client can resume. */
export interface LiveEvent {
  readonly id: string;
  readonly message: LiveMessage;
}

export interface Subscriber {
  readonly queue: AsyncQueue<LiveEvent>;
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
 * Subscriptions with identical (path, input, auth scope) share one QueryGroup: one execution,
 * one cached result, one version counter.
 */
export class QueryGroup {
  readonly subscribers = new Set<Subscriber>();
  readSet: ReadSet | null = null;
  result: GroupResult | null = null;
  version = 0;
  position = "";
  running = false;
  dirty = false;
  /** Changes delivered while an execution ran: judged against its new ReadSet afterwards. */
  changesDuringRun: Change[] = [];
  executions = 0;
  closed = false;

  constructor(
    readonly key: string,
    readonly path: string,
    readonly input: unknown,
    /** Context of the subscriber that created the group; all members share its auth scope. */
    readonly ctx: unknown,
  ) {}

  eventId(): string {
    return `${this.version}.${this.result?.hash ?? ""}`;
  }
}

/** The hash part of a tracked id (`<version>.<hash>`), or null when it is not one of ours. */
export function hashFromEventId(id: string | null | undefined): string | null {
  if (!id) return null;
  const dot = id.indexOf(".");
  return dot > 0 ? id.slice(dot + 1) || null : null;
}
