/**
 * Presence, client side: who is in a room and their app-defined state (name, color, cursor…),
 * over `$presence.join` / `$presence.set`. Framework-agnostic; `react/usePresence` binds it.
 */
export { tabPresenceId } from "./clientId.ts";
export {
  PresenceRoom,
  type PresenceJoinHandlers,
  type PresencePeer,
  type PresenceRoomOptions,
  type PresenceSnapshot,
  type PresenceStatus,
  type PresenceTransport,
} from "./presenceRoom.ts";
export {
  PRESENCE_JOIN,
  PRESENCE_SET,
  type PresenceJoinInput,
  type PresenceMessage,
  type PresenceSetInput,
} from "@tether/protocol";
export { PresenceRegistry, presenceRegistryOf, type PresenceLease, type PresenceRegistryOptions } from "./registry.ts";
export { presenceTransportOf } from "./transport.ts";
