import { TRPCClientError, type TRPCLink } from "@trpc/client";
import type { AnyRouter, CombinedDataTransformer, DataTransformer } from "@trpc/server";
import { observable } from "@trpc/server/observable";
import { liveAwareDeserializer } from "@tether/protocol";

/** A tRPC data transformer (`superjson`, …): the one the server's `initTether().create({ transformer })` has. */
export type DataTransformerOptions = DataTransformer | CombinedDataTransformer;

/**
 * The app's transformer as every link Tether builds uses it: outputs that are live messages the
 * server serialized once per result (`@tether/protocol`'s transformer.ts) become messages again —
 * Dates, BigInts, Decimals inside them restored by the app's transformer — before the live-query
 * registry sees them; everything else is the app's transformer untouched.
 */
export function tetherTransformer(transformer: DataTransformerOptions): CombinedDataTransformer {
  const combined: CombinedDataTransformer = "input" in transformer ? transformer : { input: transformer, output: transformer };
  return {
    input: combined.input,
    output: {
      serialize: (value: unknown) => combined.output.serialize(value),
      deserialize: liveAwareDeserializer(combined.output),
    },
  };
}

/** What a client tells when the server's answer cannot be read with its transformer. */
export const TRANSFORMER_MISMATCH_MESSAGE =
  "the server's answer could not be read: the server and this client use different data transformers (initTether's and createTetherClient's `transformer` must be the same; see docs/transformers.md)";

/** UNPROCESSABLE_CONTENT (tRPC's JSON-RPC number): permanent, retrying cannot fix it. */
const MISMATCH_SHAPE = { code: -32022, message: TRANSFORMER_MISMATCH_MESSAGE, data: { code: "UNPROCESSABLE_CONTENT", httpStatus: 422 } };

/**
 * The WebSocket's frame decoder: JSON, as tRPC's own, plus one check. An error frame whose error
 * this client's transformer cannot turn back into an error shape (the server used another
 * transformer, or none) makes tRPC's wsLink throw from its message listener — an uncaught
 * exception that ends a Node process. Such an error is replaced by one saying what is wrong.
 * Data frames are not checked here (they cost a second deserialization): a live message that
 * cannot be read ends its live query with the same message (live/liveQuery.ts).
 */
export function mismatchSafeDecoder(output: CombinedDataTransformer["output"]): (data: string | ArrayBuffer | Uint8Array) => unknown {
  const readable = (error: unknown): boolean => {
    try {
      const shape = output.deserialize(error) as { code?: unknown } | null | undefined;
      return typeof shape === "object" && shape !== null && typeof shape.code === "number";
    } catch {
      return false;
    }
  };
  const check = (message: unknown): unknown => {
    if (typeof message !== "object" || message === null || !("error" in message)) return message;
    const { error } = message as { error: unknown };
    return readable(error) ? message : { ...message, error: output.serialize(MISMATCH_SHAPE) };
  };
  return (data) => {
    if (typeof data !== "string") throw new Error("binary frames are not accepted: JSON travels in text frames");
    const parsed: unknown = JSON.parse(data);
    return Array.isArray(parsed) ? parsed.map(check) : check(parsed);
  };
}

/** Whether `error` carries an error shape the server sent and this client could read. */
function hasReadableShape(error: unknown): boolean {
  if (!(error instanceof TRPCClientError)) return false;
  const shape = (error as TRPCClientError<AnyRouter>).shape as { code?: unknown } | undefined;
  return typeof shape === "object" && shape !== null && typeof shape.code === "number";
}

/**
 * The Server-Sent Events link, with errors this client could not read made readable. tRPC's
 * `httpSubscriptionLink` decodes data and error events with the same transformer and reports
 * network trouble as connection states, not errors; so an error it ends a subscription with that
 * has no readable shape is a server answer decoded with the wrong transformer ("Unknown error", or
 * a TypeError from reading the shape's code). It becomes the same UNPROCESSABLE_CONTENT the
 * WebSocket's decoder gives (`mismatchSafeDecoder`).
 */
export function mismatchSafeSubscriptionLink(link: TRPCLink<AnyRouter>): TRPCLink<AnyRouter> {
  return (runtime) => {
    const operation = link(runtime);
    return (call) =>
      observable((observer) => {
        const subscription = operation(call).subscribe({
          next: (value) => observer.next(value),
          error: (error) =>
            observer.error(hasReadableShape(error) ? error : new TRPCClientError(TRANSFORMER_MISMATCH_MESSAGE, { result: { error: MISMATCH_SHAPE }, cause: error instanceof Error ? error : undefined })),
          complete: () => observer.complete(),
        });
        return () => subscription.unsubscribe();
      });
  };
}
