import { getUntypedClient } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import type { PresenceTransport } from "./presenceRoom.ts";
import { PRESENCE_JOIN, PRESENCE_SET, type PresenceMessage } from "@tether/protocol";

/**
 * `$presence.join` / `$presence.set` through the tRPC client a Tether client already holds: joins
 * share its subscription transport (the one WebSocket, or SSE), sets go over HTTP with the rest.
 */
export function presenceTransportOf(client: TetherClient<AnyRouter>): PresenceTransport {
  const untyped = getUntypedClient(client.trpc);
  return {
    join(input, handlers) {
      return untyped.subscription(PRESENCE_JOIN, input, {
        onData: (message) => handlers.onData(message as PresenceMessage),
        onError: (error) => handlers.onError(error),
        onComplete: () => handlers.onComplete(),
        onConnectionStateChange: (state) => handlers.onConnectionStateChange?.({ state: state.state, error: state.error }),
      });
    },
    set: (input) => untyped.mutation(PRESENCE_SET, input),
  };
}
