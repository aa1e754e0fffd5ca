/**
 * Presence: who is here, cursors, selections — per room, in Loro `EphemeralStore`s, never
 * persisted. `initTether` mounts it as `$presence.join` / `$presence.set`; see docs/presence.md.
 */
export {
  PresenceHub,
  presenceJoinInput,
  presenceSetInput,
  type PresenceDeps,
  type PresenceJoinInput,
  type PresenceMessage,
  type PresenceSetInput,
  type PresenceStats,
} from "./hub.ts";
export { DEFAULT_MAX_STATE_BYTES, DEFAULT_PRESENCE_TIMEOUT_MS, type PresenceOptions } from "./options.ts";
