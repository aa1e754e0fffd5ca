import { TRPCError } from "@trpc/server";
import { VersionVector } from "loro-crdt";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const badRequest = (message: string) => new TRPCError({ code: "BAD_REQUEST", message });
export const notFound = (message = "document not found") => new TRPCError({ code: "NOT_FOUND", message });

/** Standard-alphabet base64 → bytes; anything else is BAD_REQUEST (Buffer alone would skip junk). */
export function decodeBase64(value: string, what: string): Uint8Array {
  if (!BASE64.test(value)) throw badRequest(`${what} is not valid base64`);
  const buffer = Buffer.from(value, "base64");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Decoded size of a base64 string, without decoding it (for the size limit before any work). */
export function base64DecodedLength(value: string): number {
  const padding = value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0;
  return Math.floor((value.length * 3) / 4) - padding;
}

/** The caller's version (base64 of `VersionVector.encode()`); absent → the empty version. */
export function decodeVersion(value: string | undefined): VersionVector {
  if (value === undefined || value === "") return new VersionVector(null);
  const bytes = decodeBase64(value, "version");
  try {
    return VersionVector.decode(bytes);
  } catch {
    throw badRequest("version is not an encoded Loro version vector");
  }
}

export function encodeVersion(version: VersionVector): string {
  return encodeBase64(version.encode());
}

/** True when `doc` has anything `known` lacks (a concurrent version counts). */
export function hasNews(current: VersionVector, known: VersionVector): boolean {
  const order = current.compare(known);
  return order === undefined || order > 0;
}
