import { Subscribable } from "./subscribable.ts";

/**
 * How the client's subscription transport is doing:
 * - `idle`: nothing to keep open (no live query yet, or a lazy socket closed after the last one);
 * - `connecting`: first connection under way;
 * - `connected`: open (WebSocket) or every live query streaming (SSE);
 * - `reconnecting`: it was connected and lost the connection; retrying with backoff.
 */
export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting";

export interface ConnectionStatus {
  readonly state: ConnectionState;
  readonly transport: "ws" | "sse";
  /** The browser's own idea (`navigator.onLine`); true where there is no browser. */
  readonly online: boolean;
  /** Why the last connection attempt or connection failed, if it did. */
  readonly error: unknown;
}

/** An immutable snapshot per change, so `useSyncExternalStore` can compare by reference. */
export class ConnectionStatusStore extends Subscribable {
  private status: ConnectionStatus;

  constructor(transport: "ws" | "sse", online: boolean) {
    super();
    this.status = { state: "idle", transport, online, error: null };
  }

  get(): ConnectionStatus {
    return this.status;
  }

  update(change: Partial<Omit<ConnectionStatus, "transport">>): void {
    const next = { ...this.status, ...change };
    if (next.state === this.status.state && next.online === this.status.online && next.error === this.status.error) return;
    this.status = next;
    for (const listener of this.listeners) listener();
  }
}

/** What the client listens to for online/offline and tab visibility (a `window`, or a stand-in). */
export interface EnvironmentTarget {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
  navigator?: { onLine?: boolean };
  document?: {
    visibilityState?: string;
    addEventListener(type: string, listener: () => void): void;
    removeEventListener(type: string, listener: () => void): void;
  };
}

export function defaultEnvironment(): EnvironmentTarget | null {
  const g = globalThis as unknown as Partial<EnvironmentTarget> & { window?: unknown };
  return typeof g.window === "object" && typeof g.addEventListener === "function" ? (g as EnvironmentTarget) : null;
}

/**
 * Calls `onWake` when the browser comes back online or the tab becomes visible (a socket that
 * died while the laptop slept should not wait out its backoff), and reports online/offline.
 */
export function watchEnvironment(
  env: EnvironmentTarget | null,
  handlers: { onWake: () => void; onOnlineChange: (online: boolean) => void },
): () => void {
  if (!env) return () => undefined;
  const online = () => {
    handlers.onOnlineChange(true);
    handlers.onWake();
  };
  const offline = () => handlers.onOnlineChange(false);
  const visibility = () => {
    if (env.document?.visibilityState !== "hidden") handlers.onWake();
  };
  env.addEventListener("online", online);
  env.addEventListener("offline", offline);
  env.document?.addEventListener("visibilitychange", visibility);
  return () => {
    env.removeEventListener("online", online);
    env.removeEventListener("offline", offline);
    env.document?.removeEventListener("visibilitychange", visibility);
  };
}
