import { TRPCError, type CombinedDataTransformer, type DataTransformer } from "@trpc/server";
import { serializedLiveMessage, type LiveMessage, type SerializedLiveMessage } from "@tether/protocol";

/** What `initTether().create({ transformer })` takes: what `initTRPC.create({ transformer })` takes. */
export type DataTransformerOptions = DataTransformer | CombinedDataTransformer;

/** The messages `$live` yields: only these are serialized the shared way (see below). */
const liveMessages = new WeakSet<object>();

/** Marks a message `$live` is about to yield (the reactor never changes one once published). */
export function markLiveMessage(message: LiveMessage): LiveMessage {
  liveMessages.add(message);
  return message;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function isLiveMessage(value: unknown): value is LiveMessage {
  return typeof value === "object" && value !== null && liveMessages.has(value);
}

/**
 * The app's transformer, with live messages serialized once per result instead of once per frame.
 *
 * tRPC calls `output.serialize` for every frame it sends: 1,000 subscribers of a 1,000-row query
 * would have superjson walk the rows 1,000 times. Here a `$live` message's big part (`data` of a
 * full message, `patch` of a patch: the objects the reactor shares between subscribers and late
 * joiners) is serialized once per object, cached by identity, and sent in the envelope of
 * `@tether/protocol`'s transformer.ts, which the Tether client turns back into the message. The
 * same cached object reaches every frame, so the WebSocket encoder (transport/frames.ts) turns it
 * into JSON once too. Everything else goes through the app's transformer untouched.
 */
export function liveAwareTransformer(transformer: DataTransformerOptions): CombinedDataTransformer {
  const combined: CombinedDataTransformer = "input" in transformer ? transformer : { input: transformer, output: transformer };
  const output = combined.output;
  const serializedParts = new WeakMap<object, unknown>();

  const serializePart = (value: unknown): unknown => {
    if (typeof value !== "object" || value === null) return output.serialize(value);
    if (serializedParts.has(value)) return serializedParts.get(value);
    const serialized = output.serialize(value);
    serializedParts.set(value, serialized);
    return serialized;
  };
  const serializeMessage = (message: LiveMessage): SerializedLiveMessage => {
    if (message.kind === "full") return serializedLiveMessage(message, serializePart(message.data));
    if (message.kind === "patch") return serializedLiveMessage(message, serializePart(message.patch));
    return serializedLiveMessage(message, undefined);
  };

  const live: CombinedDataTransformer = {
    input: combined.input,
    output: {
      serialize(value: unknown) {
        // SSE: the message on its own. WebSocket: inside tRPC's tracked envelope `{ id, data }`.
        if (isLiveMessage(value)) return serializeMessage(value);
        if (isPlainObject(value) && isLiveMessage(value.data)) return { ...value, data: serializeMessage(value.data) };
        return output.serialize(value);
      },
      deserialize: (value: unknown) => output.deserialize(value),
    },
  };
  serializers.set(live, serializeMessage);
  return live;
}

/** Each live-aware transformer's message serializer (for assertLiveSerializable). */
const serializers = new WeakMap<CombinedDataTransformer, (message: LiveMessage) => unknown>();

/**
 * Serializes a message `$live` is about to yield (cached: the frame's own serialize then finds it
 * done), and ends the subscription with a typed, permanent error when the app's transformer cannot
 * serialize it — instead of tRPC answering INTERNAL_SERVER_ERROR from its send, which clients
 * retry forever against the same result.
 */
export function assertLiveSerializable(transformer: CombinedDataTransformer, path: string, message: LiveMessage): void {
  const serialize = serializers.get(transformer);
  if (!serialize) return;
  try {
    serialize(message);
  } catch (cause) {
    throw new TRPCError({
      code: "UNPROCESSABLE_CONTENT",
      message: `live query ${path} returned a value the data transformer cannot serialize: ${(cause as Error)?.message ?? String(cause)}`,
      cause,
    });
  }
}
