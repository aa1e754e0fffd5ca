import { getUntypedClient } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import type { TransportState } from "../core/resumableStream.ts";
import {
  CRDT_PULL,
  CRDT_PUSH,
  CRDT_STREAM,
  type CrdtPushInput,
  type CrdtPushResult,
  type CrdtUpdateMessage,
  type CrdtVersionInput,
  VIA_SOCKET,
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
 * Pushes up to this many base64 characters go over the client's WebSocket when it has one; larger
 * ones over HTTP, where an update over the server's body limit is answered PAYLOAD_TOO_LARGE (and
 * the session sends halves) — over the socket, a message over that limit closes the connection.
 */
export const MAX_SOCKET_PUSH_CHARS = 256 * 1024;

/**
 * The CRDT procedures over a Tether client's links: the stream shares the live queries' socket
 * (or SSE). Pushes go over that socket too when it is a WebSocket (a keystroke is one small
 * message on an open connection, as the stream's are; over HTTP each push was a request of its
 * own, and on a loaded machine the deployment bench saw them take 0.3–1.5 s from send to the
 * server's handler while the relay back over the socket took ~20 ms); with SSE, and for large
 * updates, over HTTP batch with the other calls. By path, untyped: `tether.appRouter` adds
 * `$crdt` to every app router, so no app type is needed.
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
    push: (input) =>
      untyped.mutation(CRDT_PUSH, input, {
        context: { [VIA_SOCKET]: input.update.length <= MAX_SOCKET_PUSH_CHARS },
      }) as Promise<CrdtPushResult>,
    pull: (input) => untyped.query(CRDT_PULL, input) as Promise<CrdtUpdateMessage>,
  };
}
