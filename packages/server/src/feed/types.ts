export type ChangeOp = "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE";

/** A row as captured by the trigger: `to_jsonb(row)`, keyed by column name. */
export type CapturedRow = Record<string, unknown>;

/** One committed row change from `_tether_changes`. */
export interface Change {
  /** Insert-time sequence number (decimal string); commit order is the feed's, not this. */
  readonly seq: string;
  /** The writing transaction (xid8, decimal string). */
  readonly xid: string;
  readonly table: string;
  readonly op: ChangeOp;
  /** Primary-key columns of the row (null for TRUNCATE). */
  readonly pk: CapturedRow | null;
  readonly old: CapturedRow | null;
  readonly new: CapturedRow | null;
  /** Columns left out of old/new (bytea or oversized): unknown to readers. */
  readonly omitted: readonly string[];
  /** Time the row was written (ISO 8601). */
  readonly at: string;
}

/** What a feed subscriber receives, one at a time, in commit order. */
export type FeedEvent =
  | {
      readonly type: "transaction";
      /** The committed transaction whose changes these are. */
      readonly xid: string;
      readonly changes: readonly Change[];
      /** Resume position that includes this transaction. */
      readonly position: string;
    }
  | {
      /**
       * Changes this subscriber had not read were trimmed from the log: whatever it derived
       * from the feed must be rebuilt from the database. Delivery continues from `position`.
       */
      readonly type: "resync";
      readonly reason: string;
      readonly position: string;
    };

export type FeedListener = (event: FeedEvent) => void | Promise<void>;

export interface FeedSubscribeOptions {
  /** Resume after this position (from an earlier event); default: from now. */
  after?: string;
}

export interface FeedSubscription {
  /** The position of everything delivered so far. */
  position(): string;
  /** Resolves once every change committed before this call has been delivered. */
  caughtUp(): Promise<void>;
  close(): void;
}

export interface FeedStats {
  subscribers: number;
  /** Transactions delivered to subscribers, summed over subscribers. */
  deliveredTransactions: number;
  /** Reads of the change log. */
  reads: number;
  /** Milliseconds between the last delivered change's write and its delivery. */
  lastLagMs: number | null;
  resyncs: number;
  listenerReconnects: number;
}
