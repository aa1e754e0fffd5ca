/**
 * The CRDT wire contract (`$crdt.pull/push/stream`, names in procedures.ts): binary Loro data is
 * base64 inside JSON; a document is named by `(model, id, field)` and its content lives in the
 * Loro root container named after the field (`doc.getText(field)` / `doc.getMap(field)`).
 */

/** Which collaborative field of which row: the Prisma model name, the row id, the field name. */
export interface CrdtTarget {
  readonly model: string;
  /** The row's primary key (a string, or an integer for Int ids). */
  readonly id: string | number;
  readonly field: string;
}

/** `/// @crdt(text)` fields hold a LoroText, `/// @crdt(map)` fields a LoroMap. */
export type CrdtKind = "text" | "map";

export interface CrdtVersionInput extends CrdtTarget {
  /** base64 of `VersionVector.encode()` the caller holds; absent: send the whole document. */
  version?: string;
}

export interface CrdtPushInput extends CrdtTarget {
  /** base64 of a Loro update (`doc.export(...)`). */
  update: string;
}

/** One `$crdt.stream` message, and the `$crdt.pull` answer. */
export interface CrdtUpdateMessage {
  /** base64 Loro update: what the caller lacked (first message) or one committed change. */
  update: string;
  /** base64 of the server's `oplogVersion().encode()` after it. */
  version: string;
}

export interface CrdtPushResult {
  version: string;
}

/** The registry's key of a target (NUL-separated: none of the parts can hold one usefully). */
export function crdtKey(target: CrdtTarget): string {
  return `${target.model}\u0000${target.id}\u0000${target.field}`;
}

/**
 * A stream message, whether the server yields it bare or wrapped by tRPC's `tracked()`
 * (`{ id, data }`). Null when it is neither: the session then resynchronises.
 */
export function readUpdateMessage(value: unknown): CrdtUpdateMessage | null {
  const candidate = isRecord(value) && isRecord(value.data) && typeof value.id === "string" ? value.data : value;
  if (isRecord(candidate) && typeof candidate.update === "string" && typeof candidate.version === "string") {
    return { update: candidate.update, version: candidate.version };
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
