/** Messages between nodes through the database's NOTIFY (with a spill table for big ones). */
export { DEFAULT_NOTIFY_CHANNEL_CONFIG, NotifyChannel } from "./notifyChannel.ts";
export type { NotifyChannelConfig, NotifyChannelOptions } from "./notifyChannel.ts";
