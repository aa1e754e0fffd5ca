import type { CrdtPushInput as CrdtPushWire, CrdtVersionInput } from "@tether/protocol";
import { z } from "zod";

// The wire types are @tether/protocol's; the schemas below are checked against them (`satisfies`).
export type { CrdtPushResult, CrdtUpdateMessage } from "@tether/protocol";

/** Limits and compaction of CRDT documents (`initTether().create({ crdt })`). */
export interface CrdtOptions {
  /** Largest decoded update `$crdt.push` accepts (bytes); bigger is PAYLOAD_TOO_LARGE. Default 1 MiB. */
  maxUpdateBytes?: number;
  /** Fold the update log into the snapshot once a document has this many logged updates. Default 100. */
  compactEveryUpdates?: number;
  /** … or once its logged updates add up to this many bytes. Default 1 MiB. */
  compactEveryBytes?: number;
  /** Documents a node keeps decoded in memory (its one copy of each, LRU over idle ones). Default 500. */
  cachedDocs?: number;
  /**
   * Updates queued for one `$crdt.stream` subscriber that is not reading (SSE pauses a stream on
   * backpressure; a server-side consumer may stall). Past this — or past
   * `maxQueuedStreamBytes` — its backlog is folded into one update from the version it has
   * taken: memory stays bounded and it still converges. Default 256.
   */
  maxQueuedStreamMessages?: number;
  /** … or once its queued updates add up to this many bytes (base64). Default 4 MiB. */
  maxQueuedStreamBytes?: number;
  /**
   * The column is written from the document at most this long after a commit changed it (the
   * changes meanwhile go together), at once when the document's last subscriber on the node
   * leaves and at shutdown; a node that stopped first leaves it to the next start. Default 250 ms.
   */
  projectionDelayMs?: number;
  /**
   * Relay pushed updates to other nodes through NOTIFY before they are durable (`tether_crdt`).
   * null: on with Postgres, off with PGlite (one process: nobody to relay to). Default null.
   */
  relay?: boolean | null;
  /** Write verdicts (document, scope) a node keeps for pushes. Default 10,000. */
  maxWriteChecks?: number;
  /** … each dropped after this long unused (re-checked on the next push). Default 60 s. */
  writeCheckIdleMs?: number;
}

export const DEFAULT_CRDT_OPTIONS: Required<CrdtOptions> = {
  maxUpdateBytes: 1024 * 1024,
  compactEveryUpdates: 100,
  compactEveryBytes: 1024 * 1024,
  cachedDocs: 500,
  maxQueuedStreamMessages: 256,
  maxQueuedStreamBytes: 4 * 1024 * 1024,
  projectionDelayMs: 250,
  relay: null,
  maxWriteChecks: 10_000,
  writeCheckIdleMs: 60_000,
};

const base64 = z.string().max(64 * 1024 * 1024);
const target = {
  model: z.string().min(1).max(128),
  id: z.union([z.string().min(1).max(256), z.number().int()]),
  field: z.string().min(1).max(128),
};

/** `$crdt.pull` / `$crdt.stream` input: `version` = base64 of the caller's `VersionVector.encode()`. */
export const crdtPullInput = z.object({ ...target, version: base64.optional() }) satisfies z.ZodType<CrdtVersionInput, CrdtVersionInput>;
export const crdtStreamInput = crdtPullInput;
/** `$crdt.push` input: `update` = base64 of a Loro update (or snapshot). */
export const crdtPushInput = z.object({ ...target, update: base64 }) satisfies z.ZodType<CrdtPushWire, CrdtPushWire>;

export type CrdtPullInput = z.infer<typeof crdtPullInput>;
export type CrdtStreamInput = z.infer<typeof crdtStreamInput>;
export type CrdtPushInput = z.infer<typeof crdtPushInput>;

export interface CrdtStats {
  /** Documents with stream subscribers on this node. */
  streamedDocs: number;
  streamSubscribers: number;
  /** Updates queued for stream subscribers that have not taken them yet (over all of them). */
  streamQueuedMessages: number;
  /** … and their size (base64 characters). */
  streamQueuedBytes: number;
  /** Backlogs folded into one catch-up update because a subscriber fell past its bound. */
  streamFolds: number;
  /** Readability re-checks run because a committed change touched what a check read. */
  accessRechecks: number;
  pushes: number;
  /** Group commits (transactions that logged pushed updates): pushes / commits = the batching. */
  commits: number;
  /** Pushes accepted and not yet answered (queued for, or in, a group commit). */
  pushesInFlight: number;
  /** Projections of documents into their columns. */
  projections: number;
  compactions: number;
  /** Times a node had to reload a document because an update it was told about was compacted away. */
  reloads: number;
}
