import type { CombinedDataTransformer, DataTransformer } from "@trpc/server";
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
