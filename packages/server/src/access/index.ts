/**
 * Access verdicts kept current by the change feed: presence joins and CRDT streams hold a lease
 * on "may this caller still have this?", re-checked when a committed change touches what the
 * check read. See docs/security.md ("Presence and CRDT documents").
 */
export {
  AccessWatch,
  DEFAULT_ACCESS_WATCH_CONFIG,
  type AccessCheck,
  type AccessLease,
  type AccessWatchConfig,
  type AccessWatchOptions,
  type RecordedRun,
  type Revocation,
} from "./accessWatch.ts";
