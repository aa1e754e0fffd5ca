"use client";
import { QueryClient } from "@tanstack/react-query";
import { useEffect, useState, type ReactNode } from "react";
import { TetherProvider, useConnectionStatus, useTetherClient } from "../src/lib/tether.ts";
import { hydrateData, transformer } from "../src/lib/transformer.ts";

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
  // The browser's cache: server-rendered pages' data is hydrated through the router's transformer.
  const [queryClient] = useState(() => new QueryClient({ defaultOptions: { hydrate: hydrateData } }));
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
