import { isSerializedLiveMessage, LIVE_PROCEDURE } from "@tether/protocol";
import type { Encoder } from "@trpc/server/adapters/ws";

/**
 * Serializes WebSocket frames so that one live result is turned into JSON once, however many
 * subscriptions carry it.
 *
 * N identical `$live` subscriptions on one connection (or one group's subscribers on many) receive
 * the same message object from the reactor, and late joiners a new message around the same result
 * object. tRPC's default encoder stringifies each frame whole: 1,000 subscriptions on a 384 KB
 * result cost 1,000 `JSON.stringify` calls of 384 KB, seconds of blocked event loop. Here the
 * frame's small envelope is stringified per frame and the big part (`data` of a full message,
 * `patch` of a patch) comes from a cache keyed by object identity.
 *
 * Identity caching is only sound for values nobody mutates after sending, so it is applied only to
 * the subscription paths named by the caller (Tether's `$live`: the reactor never changes a message
 * or a result once published). Everything else is stringified as tRPC would.
 */
export const SHARED_PAYLOAD_PATHS: ReadonlySet<string> = new Set([LIVE_PROCEDURE]);

/** Serialized JSON of big live-message parts, by identity; entries go with their objects. */
const payloadJson = new WeakMap<object, string>();

function cachedJson(value: unknown): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value) ?? "null";
  let json = payloadJson.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    payloadJson.set(value, json);
  }
  return json;
}

/** `{"a":1}` + key "b" with JSON `2` → `{"a":1,"b":2}`. */
function withKey(objectJson: string, key: string, valueJson: string): string {
  const member = `${JSON.stringify(key)}:${valueJson}`;
  return objectJson === "{}" ? `{${member}}` : `${objectJson.slice(0, -1)},${member}}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * JSON of `value` where the member reached by `path` (keys from `value` down) is taken from the
 * cache. Falls back to plain `JSON.stringify` whenever the shape is not the expected plain objects.
 */
function jsonWithShared(value: unknown, path: readonly string[]): string {
  if (path.length === 0) return cachedJson(value);
  if (!isPlainObject(value)) return JSON.stringify(value);
  const [key, ...rest] = path as [string, ...string[]];
  const inner = value[key];
  if (inner === undefined) return JSON.stringify(value);
  const shell = JSON.stringify({ ...value, [key]: undefined });
  return withKey(shell, key, jsonWithShared(inner, rest));
}

/**
 * Where the big part of a live message is: `data` (full) or `patch`; with a data transformer, the
 * `value` of the serialized message (procedures/liveTransformer.ts), shared by identity the same way.
 */
function bigPartOf(message: unknown): string | null {
  if (isSerializedLiveMessage(message)) return "value" in message ? "value" : null;
  if (!isPlainObject(message)) return null;
  if (message.kind === "full" && "data" in message) return "data";
  if (message.kind === "patch" && "patch" in message) return "patch";
  return null;
}

/**
 * JSON of one outgoing tRPC message. `sharedPayload` says whether the message is a data frame of a
 * subscription whose values may be cached by identity (see above). tRPC's tracked data frames look
 * like `{ id, jsonrpc, result: { type: "data", id, data: { id, data: <value> } } }`.
 */
export function encodeFrame(message: unknown, sharedPayload: boolean): string {
  if (!sharedPayload || !isPlainObject(message) || !isPlainObject(message.result)) return JSON.stringify(message);
  const fast = trackedFrame(message);
  if (fast !== null) return fast;
  const tracked = message.result.data;
  if (!isPlainObject(tracked)) return JSON.stringify(message);
  const big = bigPartOf(tracked.data);
  return big ? jsonWithShared(message, ["result", "data", "data", big]) : JSON.stringify(message);
}

const hasOnly = (value: Record<string, unknown>, keys: readonly string[]): boolean => {
  let n = 0;
  for (const key in value) {
    if (!keys.includes(key)) return false;
    n += 1;
  }
  return n <= keys.length;
};

/**
 * The common case, written without taking the frame apart: a tracked data frame exactly as tRPC's
 * WebSocket adapter builds it, `{ id, jsonrpc?, result: { type: "data", data: { id, data }, id } }`,
 * whose message is a live message (a plain object, shared by every subscriber of its result). Its
 * whole JSON is cached by identity; the frame around it is one string template. Anything else
 * (other keys, another shape) returns null and is taken apart as above.
 */
function trackedFrame(frame: Record<string, unknown>): string | null {
  const { id, jsonrpc, result } = frame as { id: unknown; jsonrpc?: unknown; result: Record<string, unknown> };
  if (!hasOnly(frame, ["id", "jsonrpc", "result"]) || !hasOnly(result, ["type", "data", "id"])) return null;
  if (result.type !== "data" || typeof result.id !== "string" || !isPlainObject(result.data)) return null;
  const tracked = result.data;
  if (!hasOnly(tracked, ["id", "data"]) || tracked.id !== result.id || !isPlainObject(tracked.data) || bigPartOf(tracked.data) === null) return null;
  if (typeof id !== "number" && typeof id !== "string") return null;
  if (jsonrpc !== undefined && jsonrpc !== "2.0") return null;
  const eventId = JSON.stringify(result.id);
  const rpc = jsonrpc === undefined ? "" : `,"jsonrpc":"2.0"`;
  return `{"id":${JSON.stringify(id)}${rpc},"result":{"type":"data","data":{"id":${eventId},"data":${messageJson(tracked.data)}},"id":${eventId}}}`;
}

/** JSON of live messages, by identity (one message object goes to every subscriber of a result). */
const messageJsonCache = new WeakMap<object, string>();

/** A live message's JSON: cached whole, and its big part cached on its own (late joiners get new messages around the same result). */
function messageJson(message: Record<string, unknown>): string {
  let json = messageJsonCache.get(message);
  if (json === undefined) {
    json = jsonWithShared(message, [bigPartOf(message)!]);
    messageJsonCache.set(message, json);
  }
  return json;
}

/** Decoding, as tRPC's `jsonEncoder` does (text frames only). */
export function decodeFrame(data: string | ArrayBuffer | Uint8Array): unknown {
  if (typeof data !== "string") throw new Error("binary frames are not accepted: JSON travels in text frames");
  return JSON.parse(data);
}

export type { Encoder };
