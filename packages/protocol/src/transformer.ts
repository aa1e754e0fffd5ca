/**
 * How a live message travels when the router has a data transformer (superjson, …).
 *
 * tRPC runs the transformer on every frame: for 1,000 subscribers of one query that would walk a
 * 1,000-row result 1,000 times. So the server serializes a live message's big part (`data` of a
 * full message, `patch` of a patch) once per object, through the app's transformer, and sends it
 * inside this envelope, which the client turns back into the message before anything else sees it.
 * The envelope's own fields (kind, version, position) are strings and numbers: they need no
 * transformer.
 */
import type { LiveMessage } from "./live.ts";

/** The key that marks a serialized live message (an app's transformer output never has it). */
export const SERIALIZED_LIVE_KEY = "$tetherLive";

/** Which member of a live message holds its big part. */
export type LiveMessagePart = "data" | "patch";

/** A live message with its big part serialized by the app's transformer. */
export interface SerializedLiveMessage {
  readonly [SERIALIZED_LIVE_KEY]: { readonly kind: LiveMessage["kind"]; readonly version: number; readonly position: string };
  /** Absent for "resumed", which carries no data. */
  readonly part?: LiveMessagePart;
  /** The transformer's output for `message[part]`. */
  readonly value?: unknown;
}

/** The two halves of a data transformer (tRPC's `DataTransformer`). */
export interface ValueTransformer {
  serialize(value: unknown): unknown;
  deserialize(value: unknown): unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isSerializedLiveMessage(value: unknown): value is SerializedLiveMessage {
  return isObject(value) && isObject(value[SERIALIZED_LIVE_KEY]);
}

/** The member of `message` that is worth serializing once and sharing, if any. */
export function livePartOf(message: LiveMessage): LiveMessagePart | null {
  if (message.kind === "full") return "data";
  if (message.kind === "patch") return "patch";
  return null;
}

/** The envelope for `message`, whose big part was serialized (`serializedPart`) by the transformer. */
export function serializedLiveMessage(message: LiveMessage, serializedPart: unknown): SerializedLiveMessage {
  const envelope = { kind: message.kind, version: message.version, position: message.position };
  const part = livePartOf(message);
  return part === null ? { [SERIALIZED_LIVE_KEY]: envelope } : { [SERIALIZED_LIVE_KEY]: envelope, part, value: serializedPart };
}

/** The live message an envelope carries, its big part deserialized by the app's transformer. */
export function restoreLiveMessage(serialized: SerializedLiveMessage, transformer: ValueTransformer): LiveMessage {
  const envelope = serialized[SERIALIZED_LIVE_KEY];
  if (envelope.kind === "resumed") return { kind: "resumed", version: envelope.version, position: envelope.position };
  const value = transformer.deserialize(serialized.value);
  if (envelope.kind === "patch") return { kind: "patch", version: envelope.version, position: envelope.position, patch: value as never };
  return { kind: "full", version: envelope.version, position: envelope.position, data: value };
}

/**
 * Client side of a transformer's output half: turns serialized live messages back into messages —
 * on their own (SSE sends the message) or inside tRPC's tracked envelope `{ id, data }` (WebSocket)
 * — and hands everything else to the app's transformer.
 */
export function liveAwareDeserializer(transformer: ValueTransformer): (value: unknown) => unknown {
  return (value) => {
    if (isSerializedLiveMessage(value)) return restoreLiveMessage(value, transformer);
    if (isObject(value) && isSerializedLiveMessage(value.data)) return { ...value, data: restoreLiveMessage(value.data, transformer) };
    return transformer.deserialize(value);
  };
}
