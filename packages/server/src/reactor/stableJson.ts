import { createHash } from "node:crypto";

/** Set when stableStringify meets a BigInt (read by stableStringifyNotingBigInt). */
let bigIntSeen = false;

/** stableStringify, and whether the value holds a BigInt (found on the way, at no extra walk). */
export function stableStringifyNotingBigInt(value: unknown): { json: string; bigint: boolean } {
  bigIntSeen = false;
  const json = stableStringify(value);
  const bigint = bigIntSeen;
  bigIntSeen = false;
  return { json, bigint };
}

/** JSON with object keys sorted, so equal values serialize equally (group keys, result hashes). */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    if (typeof v === "bigint") {
      bigIntSeen = true;
      return v.toString();
    }
    return v;
  }) ?? "undefined";
}

export function hashOf(serialized: string): string {
  return createHash("sha1").update(serialized).digest("base64url");
}
