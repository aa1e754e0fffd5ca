/**
 * Standard base64 (the wire's alphabet) for binary Loro data inside JSON. Node's `Buffer` when
 * present (the server encodes every streamed update: it is several times faster), else
 * `btoa`/`atob`, built in chunks so a large snapshot does not overflow the argument limit of
 * `String.fromCharCode`.
 */
const CHUNK = 0x8000;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The part of Node's `Buffer` used here (this package has no Node types). */
interface NodeBuffer extends Uint8Array {
  toString(encoding?: "base64"): string;
}
interface NodeBufferConstructor {
  from(array: ArrayBufferLike, byteOffset: number, length: number): NodeBuffer;
  from(text: string, encoding: "base64"): NodeBuffer;
}
const NodeBuffer = (globalThis as { Buffer?: NodeBufferConstructor }).Buffer;

export function toBase64(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Decodes standard base64; check untrusted input with `isBase64` first (`Buffer` skips junk). */
export function fromBase64(text: string): Uint8Array {
  // A copy, not a view: small Buffers share one pooled ArrayBuffer, which a caller storing
  // `bytes.buffer` (IndexedDB, postMessage) would carry whole.
  if (NodeBuffer) return new Uint8Array(NodeBuffer.from(text, "base64"));
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Is `text` standard-alphabet, padded base64? */
export function isBase64(text: string): boolean {
  return BASE64.test(text);
}

/** Decoded size of a base64 string, without decoding it (for a size limit before any work). */
export function base64DecodedLength(text: string): number {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  return Math.floor((text.length * 3) / 4) - padding;
}
