export { createChangeFeed, DEFAULT_RETENTION } from "./changeFeed.ts";
export type { ChangeFeed, ChangeFeedOptions } from "./changeFeed.ts";
export type { RetentionOptions } from "./changeLog.ts";
export { encodePosition, decodePosition, positionIncludes } from "./position.ts";
export type { FeedPosition } from "./position.ts";
export type {
  Change,
  ChangeOp,
  CapturedRow,
  FeedEvent,
  FeedListener,
  FeedStats,
  FeedSubscribeOptions,
  FeedSubscription,
} from "./types.ts";
