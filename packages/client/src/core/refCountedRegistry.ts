import { systemTimers, type Timers } from "./timers.ts";

/** Defaults of the client's shared registries (live queries, CRDT sessions, presence rooms). */
export const DEFAULT_REF_COUNTED = {
  /**
   * How long an entry nobody holds is kept, ms (TanStack Query's `gcTime` idea, short): a
   * component that unmounts and mounts again (React StrictMode, a route change) finds its
   * subscription, document or room still there instead of churning the server.
   */
  releaseDelayMs: 100,
} as const;

export interface RefCountedRegistryOptions<V> {
  /** What the registry holds, for error messages ("live queries", "CRDT sessions"…). */
  name: string;
  /** Ends an entry: `releaseDelayMs` after its last release, or at `close()`. */
  dispose(value: V): void | Promise<void>;
  /** Default `DEFAULT_REF_COUNTED.releaseDelayMs`. */
  releaseDelayMs?: number;
  /** Default the runtime's; tests pass their own to run the delay by hand. */
  timers?: Timers;
}

/** One holder's use of an entry: `release()` once when done (further calls do nothing). */
export interface Lease<V> {
  readonly value: V;
  /** The value was waiting for its disposal (nobody held it) and is kept for this holder. */
  readonly revived: boolean;
  release(): void;
}

interface Entry<V> {
  readonly value: V;
  users: number;
  /** The pending disposal while nobody holds the entry. */
  timer: unknown;
}

/**
 * Values shared by key and counted by their holders: the first `acquire` of a key makes the
 * value, later ones share it, and the value is disposed `releaseDelayMs` after the last holder
 * released it — unless someone acquires it again meanwhile (TanStack Query's `removable.ts`
 * idea). The client's live queries, CRDT sessions and presence rooms are each one of these.
 */
export class RefCountedRegistry<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly timers: Timers;
  private readonly releaseDelayMs: number;
  private closed = false;

  constructor(private readonly options: RefCountedRegistryOptions<V>) {
    this.timers = options.timers ?? systemTimers;
    this.releaseDelayMs = options.releaseDelayMs ?? DEFAULT_REF_COUNTED.releaseDelayMs;
  }

  /** The value at `key` (made by `create` when there is none), held until `release()`. */
  acquire(key: string, create: () => V): Lease<V> {
    if (this.closed) throw new Error(`${this.options.name} of a closed client`);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { value: create(), users: 0, timer: null };
      this.entries.set(key, entry);
    }
    const held = entry;
    const revived = held.users === 0 && held.timer !== null;
    held.users += 1;
    this.cancelDisposal(held);
    let released = false;
    return {
      value: held.value,
      revived,
      release: () => {
        // Idempotent: a second call must not take another holder's reference.
        if (released) return;
        released = true;
        held.users -= 1;
        if (held.users > 0 || held.timer !== null) return;
        held.timer = this.timers.setTimeout(() => {
          held.timer = null;
          if (held.users > 0 || this.entries.get(key) !== held) return;
          this.entries.delete(key);
          void this.options.dispose(held.value);
        }, this.releaseDelayMs);
      },
    };
  }

  /** The value at `key` if there is one (held or waiting for its disposal). */
  get(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** How many hold the value at `key` right now. */
  users(key: string): number {
    return this.entries.get(key)?.users ?? 0;
  }

  values(): V[] {
    return [...this.entries.values()].map((entry) => entry.value);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops `value`'s entry without disposing it (the value ended by itself). */
  forget(key: string, value: V): void {
    const entry = this.entries.get(key);
    if (!entry || entry.value !== value) return;
    this.cancelDisposal(entry);
    this.entries.delete(key);
  }

  /** Disposes every value now; `acquire` throws from here on. */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) this.cancelDisposal(entry);
    await Promise.all(entries.map(async (entry) => this.options.dispose(entry.value)));
  }

  private cancelDisposal(entry: Entry<V>): void {
    if (entry.timer === null) return;
    this.timers.clearTimeout(entry.timer);
    entry.timer = null;
  }
}
