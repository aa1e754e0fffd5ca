/**
 * The wire shape of presence (`$presence.join/set`, names in procedures.ts; see docs/presence.md).
 */

export interface PresenceJoinInput {
  /** 1..200 characters: what the app scopes presence to ("note:42"). */
  room: string;
  /** 1..100 characters: this tab's key in the room. */
  clientId: string;
}

export interface PresenceSetInput extends PresenceJoinInput {
  /** JSON, at most the server's `maxStateBytes` (default 8 KiB) serialized. */
  state: unknown;
}

/**
 * One `$presence.join` message: `update` is base64 of Loro `EphemeralStore` bytes. `full` marks the
 * whole room (first message of a join, or after the server dropped a slow reader's backlog): the
 * client replaces what it had. `timeoutMs` (on full messages) is the server's entry timeout.
 */
export interface PresenceMessage {
  update: string;
  full?: true;
  timeoutMs?: number;
}
