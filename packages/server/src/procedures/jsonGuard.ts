import { TRPCError } from "@trpc/server";
import type { LiveMessage } from "@tether/protocol";
import { mayHoldBigInt } from "../reactor/index.ts";
import type { SchemaMeta } from "../schema/index.ts";

/**
 * Where `value` holds a BigInt (`[3].count`), or null. JSON has no BigInt: `JSON.stringify` throws on
 * one. Values with their own `toJSON` (Date, Decimal, Buffer) and typed arrays are taken as JSON
 * writes them. Walks with an explicit stack, so depth cannot overflow it.
 */
export function bigIntPath(value: unknown): string | null {
  const stack: Array<[unknown, string]> = [[value, ""]];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === "bigint") return path || "(the value)";
    if (typeof item !== "object" || item === null || ArrayBuffer.isView(item)) continue;
    if (typeof (item as { toJSON?: unknown }).toJSON === "function") continue;
    if (Array.isArray(item)) item.forEach((child, i) => stack.push([child, `${path}[${i}]`]));
    else for (const [key, child] of Object.entries(item)) stack.push([child, `${path}.${key}`]);
  }
  return null;
}

/**
 * Without a data transformer, a live result holding a BigInt (a `BigInt` column) cannot go out as
 * JSON: tRPC's encoders would throw on every frame — over WebSocket the client would retry forever,
 * over SSE the stream would just break. `live` ends such a subscription instead with one typed,
 * permanent error (UNPROCESSABLE_CONTENT) that says what to do; it checks once per result object
 * (cached by identity: the reactor shares a result between subscribers), not once per subscriber.
 * `output` does the same for a mutation's return value, inside its transaction: the answer could
 * not be sent, so the mutation must not commit (a caller told "failed" would retry a write that
 * happened). Null (nothing to check) when a transformer is set or the schema has no BigInt column.
 */
export interface JsonGuard {
  live(path: string, message: LiveMessage): void;
  output(path: string, value: unknown): void;
}

export function createJsonGuard(schema: SchemaMeta, hasTransformer: boolean): JsonGuard | null {
  if (hasTransformer) return null;
  const bigIntColumns = Object.values(schema.models).some((model) => Object.values(model.fields).some((field) => field.type === "BigInt"));
  if (!bigIntColumns) return null;
  const checked = new WeakMap<object, string | null>();
  const problemIn = (part: unknown): string | null => {
    if (typeof part !== "object" || part === null) return bigIntPath(part);
    let found = checked.get(part);
    if (found === undefined) {
      found = bigIntPath(part);
      checked.set(part, found);
    }
    return found;
  };
  const fail = (what: string, at: string): never => {
    throw new TRPCError({
      code: "UNPROCESSABLE_CONTENT",
      message: `${what} returned a BigInt (at ${at}), which JSON cannot carry: give initTether and the client the same data transformer (superjson; see docs/transformers.md)`,
    });
  };
  return {
    live(path, message) {
      // The reactor noticed any BigInt while hashing the result: only those are walked for where.
      if (!mayHoldBigInt(message)) return;
      if (message.kind === "full") {
        const at = problemIn(message.data);
        if (at !== null) fail(`live query ${path}`, at);
      } else if (message.kind === "patch") {
        // Said as a path into the result: the row's index in the new list, not in the patch.
        const at = problemIn(message.patch.upsert);
        if (at === null) return;
        const row = /^\[(\d+)\]/.exec(at);
        fail(`live query ${path}`, row ? `[${message.patch.at[Number(row[1])]}]${at.slice(row[0].length)}` : at);
      }
    },
    output(path, value) {
      const at = bigIntPath(value);
      if (at !== null) fail(`mutation ${path} (nothing was written)`, at);
    },
  };
}
