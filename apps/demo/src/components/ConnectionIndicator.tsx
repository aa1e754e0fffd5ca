"use client";
import { useConnectionStatus } from "../lib/tether.ts";

const LABELS = {
  idle: "Idle",
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
} as const;

/** The live connection (WebSocket) as the user should see it: live, connecting or reconnecting. */
export function ConnectionIndicator() {
  const status = useConnectionStatus();
  const state = !status.online && status.state !== "connected" ? "offline" : status.state;
  const label = state === "offline" ? "Offline" : LABELS[status.state];
  return (
    <span className={`conn conn-${state}`} data-testid="connection" data-state={state} role="status" aria-live="polite">
      <span className="conn-dot" aria-hidden="true" />
      {label}
    </span>
  );
}
