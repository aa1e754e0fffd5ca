import type { AnyRouter } from "@trpc/server";
import type { BackoffOptions } from "../core/backoff.ts";
import type { ClientSlot, TetherClient } from "../core/client.ts";
import { RefCountedRegistry } from "../core/refCountedRegistry.ts";
import type { Timers } from "../core/timers.ts";
import { newPresenceId } from "./clientId.ts";
import { PresenceRoom, type PresenceTransport } from "./presenceRoom.ts";
import { presenceTransportOf } from "./transport.ts";

/** How a client's presence rooms join (`createTetherClient({ presence })`). */
export interface PresenceRegistryOptions {
  /**
   * This client's key in every room. Default: random, one per client (in a browser tab, the tab's
   * one client; in a Node process, each client its own — two users' clients must not share a key).
   */
  clientId?: string;
  /**
   * A room released by its last user is left this much later, ms (StrictMode remounts at once).
   * Default `DEFAULT_REF_COUNTED.releaseDelayMs` (100).
   */
  releaseDelayMs?: number;
  retry?: BackoffOptions;
  /** Timers of the release delay (tests). */
  timers?: Timers;
}

/** A room in use: `release()` when done (the room is left after the last release). */
export interface PresenceLease<State> {
  readonly room: PresenceRoom<State>;
  release(): void;
}

/**
 * The presence rooms of one client: one `PresenceRoom` per room name, shared by everything in the
 * tab that uses it (a tab has one key per room, so two components in one room are one entry).
 */
export class PresenceRegistry {
  readonly clientId: string;
  private readonly rooms: RefCountedRegistry<PresenceRoom<unknown>>;

  constructor(
    private readonly transport: PresenceTransport,
    private readonly options: PresenceRegistryOptions = {},
  ) {
    this.clientId = options.clientId ?? newPresenceId();
    this.rooms = new RefCountedRegistry<PresenceRoom<unknown>>({
      name: "presence rooms",
      dispose: (room) => room.leave(),
      releaseDelayMs: options.releaseDelayMs,
      timers: options.timers,
    });
  }

  /** Joins `room` (or shares the joined one); `initialState` applies only to a room not yet in use. */
  acquire<State>(room: string, initialState?: State): PresenceLease<State> {
    const lease = this.rooms.acquire(
      room,
      () => new PresenceRoom<State>(this.transport, { room, clientId: this.clientId, initialState, retry: this.options.retry }) as PresenceRoom<unknown>,
    );
    // A room kept through a release (a remount, a quick leave and come back) takes this holder's
    // state: nobody else holds it, and the old state is what the holder left with.
    if (lease.revived && initialState !== undefined) (lease.value as PresenceRoom<State>).setState(initialState);
    // A new room joins; one refused earlier gets another try from a new user.
    lease.value.join();
    return { room: lease.value as PresenceRoom<State>, release: lease.release };
  }

  /** Leaves every room now. */
  close(): void {
    void this.rooms.close();
  }
}

/** The client's slot for its presence rooms, filled on first use with `createTetherClient({ presence })`. */
const PRESENCE_ROOMS: ClientSlot<PresenceRegistry> = {
  name: "presence rooms",
  make: (client, options) => new PresenceRegistry(presenceTransportOf(client), options.presence),
  // The server deletes our entries and tells the rooms.
  close: (registry) => registry.close(),
};

/** The presence rooms of a Tether client, made on first use with the client's `presence` options. */
export function presenceRegistryOf(client: TetherClient<AnyRouter>): PresenceRegistry {
  return client.attach(PRESENCE_ROOMS);
}
