import { createHash } from "node:crypto";

/** JSON with object keys sorted, so equal values serialize equally (group keys, result hashes). */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    if (typeof v === "bigint") return v.toString();
    return v;
  }) ?? "undefined";
}

export function hashOf(serialized: string): string {
  return createHash("sha1").update(serialized).digest("base64url");
}
