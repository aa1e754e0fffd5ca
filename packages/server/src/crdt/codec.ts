import { TRPCError } from "@trpc/server";
import { fromBase64, isBase64, toBase64 } from "@tether/protocol";
import { VersionVector } from "loro-crdt";

export { base64DecodedLength, toBase64 as encodeBase64 } from "@tether/protocol";

export const badRequest = (message: string) => new TRPCError({ code: "BAD_REQUEST", message });
export const notFound = (message = "document not found") => new TRPCError({ code: "NOT_FOUND", message });

/** Standard-alphabet base64 → bytes; anything else is BAD_REQUEST (Buffer alone would skip junk). */
export function decodeBase64(value: string, what: string): Uint8Array {
  if (!isBase64(value)) throw badRequest(`${what} is not valid base64`);
  return fromBase64(value);
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
  return toBase64(version.encode());
}

/** True when `doc` has anything `known` lacks (a concurrent version counts). */
export function hasNews(current: VersionVector, known: VersionVector): boolean {
  const order = current.compare(known);
  return order === undefined || order > 0;
}
