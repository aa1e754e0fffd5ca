"use client";
import { useEffect, useState, type ReactNode } from "react";
import { TetherProvider, useConnectionStatus, useTetherClient } from "../src/lib/tether.ts";
import { browserQueryClient } from "../src/lib/queryClient.ts";
import { transformer } from "../src/lib/transformer.ts";

/**
 * While the socket is reconnecting, ask for a retry every few seconds: a demo server restarts
 * often, and the client's backoff (up to 30 s) is tuned for fleets, not for one developer.
 */
function ReconnectNudge() {
  const client = useTetherClient();
  const { state } = useConnectionStatus();
  useEffect(() => {
    if (state !== "reconnecting") return;
    const timer = setInterval(() => client.reconnectNow(), 3000);
    return () => clearInterval(timer);
  }, [client, state]);
  return null;
}

export function Providers({ children }: { children: ReactNode }) {
  const [queryClient] = useState(browserQueryClient);
  useEffect(() => {
    // For the browser tests (and anyone curious): the page is interactive from here on.
    document.documentElement.dataset.hydrated = "true";
  }, []);
  return (
    <TetherProvider url="/trpc" transformer={transformer} queryClient={queryClient}>
      <ReconnectNudge />
      {children}
    </TetherProvider>
  );
}
