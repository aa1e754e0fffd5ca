import { useSyncExternalStore } from "react";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import type { ConnectionStatus } from "../core/connection.ts";

/** `useConnectionStatus` against a given Tether client (the React binding passes the provider's). */
export function useConnectionStatusWith(tether: TetherClient<AnyRouter>): ConnectionStatus {
  const store = tether.connection;
  return useSyncExternalStore(
    (onChange) => store.subscribe(onChange),
    () => store.get(),
    () => store.get(),
  );
}
