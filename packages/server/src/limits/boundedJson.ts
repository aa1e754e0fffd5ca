import { z } from "zod";

/** Bounds on a client-supplied JSON value (a live query's input, presence state). */
export interface JsonBounds {
  /** Deepest nesting of arrays/objects. Hashing and serializing recurse: 10,000 levels overflow the stack. */
  maxDepth: number;
  /** Approximate serialized size, bytes (strings and keys by length, 8 per other value). */
  maxBytes: number;
}

export const DEFAULT_JSON_BOUNDS: JsonBounds = {
  /** Real query inputs and presence states nest a handful of levels. */
  maxDepth: 32,
  /** 64 KiB: a query input is a filter, not a payload. */
  maxBytes: 64 * 1024,
};

/**
 * Why `value` is out of `bounds`, or null when it is within them. Walks with an explicit stack
 * (never recursion, so a hostile depth cannot overflow it) and stops at the first excess, so the
 * cost is bounded by `maxBytes` whatever the value's real size.
 */
export function jsonBoundsProblem(value: unknown, bounds: JsonBounds = DEFAULT_JSON_BOUNDS): string | null {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let bytes = 0;
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item === "string") bytes += item.length + 2;
    else if (item === null || typeof item !== "object") bytes += 8;
    else {
      if (depth >= bounds.maxDepth) return `nested deeper than ${bounds.maxDepth} levels`;
      bytes += 2;
      if (Array.isArray(item)) {
        for (const child of item) stack.push([child, depth + 1]);
        bytes += item.length;
      } else {
        for (const [key, child] of Object.entries(item)) {
          bytes += key.length + 4;
          stack.push([child, depth + 1]);
        }
      }
    }
    if (bytes > bounds.maxBytes) return `larger than ${bounds.maxBytes} bytes`;
  }
  return null;
}

/**
 * A zod schema for any JSON value within `bounds` (BAD_REQUEST otherwise, as for any input that
 * fails validation): checked before the value is hashed, serialized or stored.
 */
export function boundedJson(bounds: Partial<JsonBounds> = {}) {
  const limits: JsonBounds = { ...DEFAULT_JSON_BOUNDS, ...bounds };
  return z.unknown().superRefine((value, ctx) => {
    const problem = jsonBoundsProblem(value, limits);
    if (problem) ctx.addIssue({ code: "custom", message: `input ${problem}` });
  });
}
