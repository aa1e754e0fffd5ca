import type { PolicyContext } from "../policies/index.ts";

/** How presence is configured (`initTether().create({ presence })`). */
export interface PresenceOptions<Ctx, Db = unknown> {
  /**
   * May this caller join `room`? Default: any signed-in caller (`ctx.user` non-null). Checked at
   * each `$presence.join`, and again whenever a committed change touches what it read through
   * `ctx.db` (the caller's policy-scoped client, read-tracked like a live query's): a refusal then
   * ends the join with FORBIDDEN and removes its entry. Read through `ctx.db`, not another client:
   * reads elsewhere are invisible, and such a join is only checked when it starts.
   * `$presence.set` needs an open join whose verdict still holds.
   */
  authorize?: (ctx: PolicyContext<Ctx, Db>, room: string) => boolean | Promise<boolean>;
  /**
   * An entry nobody refreshed for this long is dropped (and the drop broadcast). Clients refresh
   * every `timeoutMs / 3`; the first join message tells them the value. Default 30 s.
   */
  timeoutMs?: number;
  /** Rooms joined at once through one connection (one context object). Default 50. */
  maxRoomsPerConnection?: number;
  /** Largest state, as UTF-8 bytes of its JSON. Default 8 KiB. */
  maxStateBytes?: number;
  /**
   * Updates waiting for one slow subscriber; past this, its queue is replaced by one full
   * snapshot of the room (memory stays bounded, the subscriber still converges). Default 256.
   */
  maxQueuedUpdates?: number;
  /**
   * Relay presence between the nodes sharing the store's database (Postgres NOTIFY on the
   * `tether_presence` channel), so clients joined to one room through different nodes see each
   * other. Default: on with Postgres, off with PGlite (one process: nobody to relay to).
   */
  relay?: boolean;
}

export interface ResolvedPresenceOptions<Ctx> {
  authorize: (ctx: PolicyContext<Ctx, unknown>, room: string) => boolean | Promise<boolean>;
  timeoutMs: number;
  maxRoomsPerConnection: number;
  maxStateBytes: number;
  maxQueuedUpdates: number;
  relay: boolean | undefined;
}

export const DEFAULT_PRESENCE_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_STATE_BYTES = 8 * 1024;

function signedIn(ctx: unknown): boolean {
  const user = (ctx as { user?: unknown } | null)?.user;
  return user !== null && user !== undefined;
}

export function resolvePresenceOptions<Ctx>(options: PresenceOptions<Ctx> = {}): ResolvedPresenceOptions<Ctx> {
  const positive = (value: number | undefined, fallback: number, name: string) => {
    const v = value ?? fallback;
    if (!(v > 0)) throw new Error(`presence.${name} must be positive (got ${v})`);
    return v;
  };
  return {
    authorize: options.authorize ?? signedIn,
    timeoutMs: positive(options.timeoutMs, DEFAULT_PRESENCE_TIMEOUT_MS, "timeoutMs"),
    maxRoomsPerConnection: positive(options.maxRoomsPerConnection, 50, "maxRoomsPerConnection"),
    maxStateBytes: positive(options.maxStateBytes, DEFAULT_MAX_STATE_BYTES, "maxStateBytes"),
    maxQueuedUpdates: positive(options.maxQueuedUpdates, 256, "maxQueuedUpdates"),
    relay: options.relay,
  };
}
