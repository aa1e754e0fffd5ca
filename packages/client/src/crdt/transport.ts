import { getUntypedClient } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import type { TransportState } from "../core/liveQuery.ts";
import {
  CRDT_PULL,
  CRDT_PUSH,
  CRDT_STREAM,
  type CrdtPushInput,
  type CrdtPushResult,
  type CrdtUpdateMessage,
  type CrdtVersionInput,
} from "@tether/protocol";

export interface CrdtStreamHandlers {
  /** A raw stream value (see `readUpdateMessage`). */
  onData(value: unknown): void;
  onError(error: unknown): void;
  /** The server ended the stream. */
  onComplete(): void;
  onConnectionStateChange?(state: TransportState): void;
}

/** The three CRDT procedures. The Tether client's tRPC links are one; tests can pass their own. */
export interface CrdtTransport {
  stream(input: CrdtVersionInput, handlers: CrdtStreamHandlers): { unsubscribe(): void };
  push(input: CrdtPushInput): Promise<CrdtPushResult>;
  pull(input: CrdtVersionInput): Promise<CrdtUpdateMessage>;
}

/**
 * The CRDT procedures over a Tether client's links: the stream shares the live queries' socket
 * (or SSE), pushes go with the other mutations (HTTP batch, commit tracking included). By path,
 * untyped: `tether.appRouter` adds `$crdt` to every app router, so no app type is needed.
 */
export function crdtTransportOf(tether: TetherClient<AnyRouter>): CrdtTransport {
  const untyped = getUntypedClient(tether.trpc);
  return {
    stream(input, handlers) {
      return untyped.subscription(CRDT_STREAM, input, {
        onData: (value) => handlers.onData(value),
        onError: (error) => handlers.onError(error),
        onComplete: () => handlers.onComplete(),
        onConnectionStateChange: (state) => handlers.onConnectionStateChange?.({ state: state.state, error: state.error }),
      });
    },
    push: (input) => untyped.mutation(CRDT_PUSH, input) as Promise<CrdtPushResult>,
    pull: (input) => untyped.query(CRDT_PULL, input) as Promise<CrdtUpdateMessage>,
  };
}
