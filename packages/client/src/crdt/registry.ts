import type { AnyRouter } from "@trpc/server";
import type { BackoffOptions } from "../core/backoff.ts";
import type { ClientSlot, TetherClient } from "../core/client.ts";
import type { ConnectionStatusStore } from "../core/connection.ts";
import { RefCountedRegistry } from "../core/refCountedRegistry.ts";
import type { Timers } from "../core/timers.ts";
import type { CrdtPushOptions } from "./pushPolicy.ts";
import { defaultCrdtPersistence, type CrdtPersistence } from "./persistence.ts";
import { crdtKey, type CrdtTarget } from "@tether/protocol";
import { CrdtDocSession } from "./session.ts";
import { crdtTransportOf, type CrdtTransport } from "./transport.ts";

/** How a client's CRDT sessions persist, retry and push (`createTetherClient({ crdt })`). */
export interface CrdtSessionsOptions {
  /** Default: IndexedDB when the runtime has it, else memory (`defaultCrdtPersistence`). */
  persistence?: CrdtPersistence | null;
  retry?: BackoffOptions;
  /** Pushes in flight, retries of refused pushes (`DEFAULT_CRDT_PUSH`). */
  push?: CrdtPushOptions;
  saveDelayMs?: number;
  /**
   * How long a document with no users keeps its session, ms (default
   * `DEFAULT_REF_COUNTED.releaseDelayMs`, 100): a component that unmounts and mounts again
   * (StrictMode, a route change) keeps its stream and document.
   */
  releaseDelayMs?: number;
  /** Timers of the release delay (tests). */
  timers?: Timers;
}

export interface CrdtSessionRegistryOptions extends CrdtSessionsOptions {
  transport: CrdtTransport;
  connection?: ConnectionStatusStore;
}

export interface CrdtSessionHandle {
  readonly session: CrdtDocSession;
  /** Call once when done; the session ends after the last user's release (and the delay). */
  release(): void;
}

/** One session per `(model, id, field)`, shared by its users and ended after the last one leaves. */
export class CrdtSessionRegistry {
  private readonly sessions: RefCountedRegistry<CrdtDocSession>;

  constructor(private readonly options: CrdtSessionRegistryOptions) {
    this.sessions = new RefCountedRegistry<CrdtDocSession>({
      name: "CRDT sessions",
      // Each writes its persisted copy first.
      dispose: (session) => session.dispose(),
      releaseDelayMs: options.releaseDelayMs,
      timers: options.timers,
    });
  }

  acquire(target: CrdtTarget): CrdtSessionHandle {
    const lease = this.sessions.acquire(crdtKey(target), () => {
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
      session.start();
      return session;
    });
    return { session: lease.value, release: lease.release };
  }

  /** The session of a target if one is open (users or not). */
  get(target: CrdtTarget): CrdtDocSession | undefined {
    return this.sessions.get(crdtKey(target));
  }

  /** Ends every session (their persisted copies are written first). */
  close(): Promise<void> {
    return this.sessions.close();
  }
}

/** The client's slot for its CRDT sessions, filled on first use with `createTetherClient({ crdt })`. */
const CRDT_SESSIONS: ClientSlot<CrdtSessionRegistry> = {
  name: "CRDT sessions",
  make: (client, options) => new CrdtSessionRegistry({ ...options.crdt, transport: crdtTransportOf(client), connection: client.connection }),
  close: (registry) => registry.close(),
};

/**
 * The CRDT sessions of a Tether client, made on first use with the client's `crdt` options;
 * closing the client ends them.
 */
export function crdtSessionsOf(client: TetherClient<AnyRouter>): CrdtSessionRegistry {
  return client.attach(CRDT_SESSIONS);
}
