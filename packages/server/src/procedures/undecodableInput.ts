import { TRPCError, type CombinedDataTransformer } from "@trpc/server";

/**
 * An input the app's data transformer could not decode (a client sent malformed superjson: an
 * unknown type tag, a BigInt that is not digits, a path nested deep enough to overflow the stack).
 *
 * tRPC decodes every input before any procedure runs. Over HTTP a decoding error becomes a
 * BAD_REQUEST, but over WebSocket tRPC answers it with `id: null` (the whole frame failed to
 * parse), so the client's call — its query, mutation or live subscription — never gets an answer
 * and hangs. So the server's input decoder never throws: it returns this marker instead, and the
 * first middleware of every Tether procedure (`assertDecodable`) turns it into a BAD_REQUEST for
 * that call, with its own id, on every transport.
 */
class UndecodableInput {
  constructor(readonly reason: string) {}
}

/** The transformer with an input decoder that reports failures as `UndecodableInput`. */
export function decodeInputSafely(transformer: CombinedDataTransformer): CombinedDataTransformer {
  const { input } = transformer;
  return {
    ...transformer,
    input: {
      serialize: (value: unknown) => input.serialize(value),
      deserialize: (value: unknown) => {
        try {
          return input.deserialize(value);
        } catch (cause) {
          // A stack overflow's message says nothing useful to the caller; name what it means.
          const reason = cause instanceof RangeError ? "it is nested too deeply" : cause instanceof Error ? cause.message : String(cause);
          return new UndecodableInput(reason.slice(0, 200));
        }
      },
    },
  };
}

/** Throws BAD_REQUEST when the call's input could not be decoded (see `UndecodableInput`). */
export function assertDecodable(rawInput: unknown): void {
  if (!(rawInput instanceof UndecodableInput)) return;
  throw new TRPCError({
    code: "BAD_REQUEST",
    message: `the input could not be decoded with the server's data transformer (${rawInput.reason}); the client must use the same transformer as the server (see docs/transformers.md)`,
  });
}
