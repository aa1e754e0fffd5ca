import type { AnyRouter } from "@trpc/server";
import type { BackoffOptions } from "../core/backoff.ts";
import type { TetherClient } from "../core/client.ts";
import type { ConnectionStatusStore } from "../core/connection.ts";
import type { CrdtPushOptions } from "./pushPolicy.ts";
import { defaultCrdtPersistence, type CrdtPersistence } from "./persistence.ts";
import { crdtKey, type CrdtTarget } from "@tether/protocol";
import { CrdtDocSession } from "./session.ts";
import { crdtTransportOf, type CrdtTransport } from "./transport.ts";

export interface CrdtSessionRegistryOptions {
  transport: CrdtTransport;
  /** Default: IndexedDB when the runtime has it, else memory (`defaultCrdtPersistence`). */
  persistence?: CrdtPersistence | null;
  retry?: BackoffOptions;
  /** Pushes in flight, retries of refused pushes (`DEFAULT_CRDT_PUSH`). */
  push?: CrdtPushOptions;
  saveDelayMs?: number;
  connection?: ConnectionStatusStore;
  /**
   * How long a document with no users keeps its session, ms (default 100): a component that
   * unmounts and mounts again (StrictMode, a route change) keeps its stream and document.
   */
  releaseDelayMs?: number;
}

export interface CrdtSessionHandle {
  readonly session: CrdtDocSession;
  /** Call once when done; the session ends after the last user's release (and the delay). */
  release(): void;
}

/** One session per `(model, id, field)`, shared by its users and ended after the last one leaves. */
export class CrdtSessionRegistry {
  private readonly sessions = new Map<string, { session: CrdtDocSession; users: number; timer: ReturnType<typeof setTimeout> | null }>();
  private closed = false;

  constructor(private readonly options: CrdtSessionRegistryOptions) {}

  acquire(target: CrdtTarget): CrdtSessionHandle {
    if (this.closed) throw new Error("CRDT sessions of a closed client");
    const key = crdtKey(target);
    let entry = this.sessions.get(key);
    if (!entry) {
      const session = new CrdtDocSession(
        { model: target.model, id: target.id, field: target.field },
        {
          transport: this.options.transport,
          persistence: this.options.persistence === undefined ? defaultCrdtPersistence() : this.options.persistence,
          retry: this.options.retry,
          push: this.options.push,
          saveDelayMs: this.options.saveDelayMs,
          connection: this.options.connection,
        },
      );
      entry = { session, users: 0, timer: null };
      this.sessions.set(key, entry);
      session.start();
    }
    const held = entry;
    held.users += 1;
    if (held.timer) {
      clearTimeout(held.timer);
      held.timer = null;
    }
    let released = false;
    return {
      session: held.session,
      release: () => {
        if (released) return;
        released = true;
        held.users -= 1;
        if (held.users > 0 || held.timer) return;
        held.timer = setTimeout(() => {
          held.timer = null;
          if (held.users > 0 || this.sessions.get(key) !== held) return;
          this.sessions.delete(key);
          void held.session.dispose();
        }, this.options.releaseDelayMs ?? 100);
      },
    };
  }

  /** The session of a target if one is open (users or not). */
  get(target: CrdtTarget): CrdtDocSession | undefined {
    return this.sessions.get(crdtKey(target))?.session;
  }

  /** Ends every session (their persisted copies are written first). */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.sessions.values()];
    this.sessions.clear();
    for (const entry of entries) if (entry.timer) clearTimeout(entry.timer);
    await Promise.all(entries.map((entry) => entry.session.dispose()));
  }
}

const registries = new WeakMap<TetherClient<AnyRouter>, CrdtSessionRegistry>();

/**
 * Sets how a Tether client's CRDT sessions persist and retry (call before the first
 * `useCrdtDoc`/`crdtSessionsOf` of that client; later calls throw rather than be ignored).
 */
export function configureCrdtSessions(
  tether: TetherClient<AnyRouter>,
  options: Omit<CrdtSessionRegistryOptions, "transport" | "connection"> & { transport?: CrdtTransport } = {},
): CrdtSessionRegistry {
  if (registries.has(tether)) throw new Error("CRDT sessions of this client are already configured (or in use)");
  const registry = new CrdtSessionRegistry({
    ...options,
    transport: options.transport ?? crdtTransportOf(tether),
    connection: tether.connection,
  });
  registries.set(tether, registry);
  // Closing the client ends its sessions (each writes its persisted copy first).
  tether.onClose(() => registry.close());
  return registry;
}

/** The CRDT sessions of a Tether client (defaults unless `configureCrdtSessions` came first). */
export function crdtSessionsOf(tether: TetherClient<AnyRouter>): CrdtSessionRegistry {
  return registries.get(tether) ?? configureCrdtSessions(tether);
}
