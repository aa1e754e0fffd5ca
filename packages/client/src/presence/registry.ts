import type { AnyRouter } from "@trpc/server";
import type { BackoffOptions } from "../core/backoff.ts";
import type { TetherClient } from "../core/client.ts";
import { tabPresenceId } from "./clientId.ts";
import { PresenceRoom, type PresenceTransport } from "./presenceRoom.ts";
import { presenceTransportOf } from "./transport.ts";

export interface PresenceRegistryOptions {
  /** This tab's key in every room. Default: `tabPresenceId()` (random, per page load). */
  clientId?: string;
  /** A room released by its last user is left this much later, ms (StrictMode remounts at once). Default 100. */
  leaveDelayMs?: number;
  retry?: BackoffOptions;
}

/** A room in use: `release()` when done (the room is left after the last release). */
export interface PresenceLease<State> {
  readonly room: PresenceRoom<State>;
  release(): void;
}

interface Entry {
  room: PresenceRoom<unknown>;
  refs: number;
  leaving: ReturnType<typeof setTimeout> | null;
}

/**
 * The presence rooms of one client: one `PresenceRoom` per room name, shared by everything in the
 * tab that uses it (a tab has one key per room, so two components in one room are one entry).
 */
export class PresenceRegistry {
  readonly clientId: string;
  private readonly rooms = new Map<string, Entry>();
  private readonly leaveDelayMs: number;

  constructor(
    private readonly transport: PresenceTransport,
    private readonly options: PresenceRegistryOptions = {},
  ) {
    this.clientId = options.clientId ?? tabPresenceId();
    this.leaveDelayMs = options.leaveDelayMs ?? 100;
  }

  /** Joins `room` (or shares the joined one); `initialState` applies only to a room not yet in use. */
  acquire<State>(room: string, initialState?: State): PresenceLease<State> {
    let entry = this.rooms.get(room);
    if (!entry) {
      const made = new PresenceRoom<State>(this.transport, { room, clientId: this.clientId, initialState, retry: this.options.retry });
      entry = { room: made as PresenceRoom<unknown>, refs: 0, leaving: null };
      this.rooms.set(room, entry);
      made.join();
    }
    else entry.room.join(); // a room refused earlier gets another try from a new user
    const held = entry;
    held.refs += 1;
    if (held.leaving) clearTimeout(held.leaving);
    held.leaving = null;
    let released = false;
    return {
      room: held.room as PresenceRoom<State>,
      release: () => {
        if (released) return;
        released = true;
        held.refs -= 1;
        if (held.refs > 0) return;
        held.leaving = setTimeout(() => {
          if (held.refs > 0 || this.rooms.get(room) !== held) return;
          this.rooms.delete(room);
          held.room.leave();
        }, this.leaveDelayMs);
      },
    };
  }

  /** Leaves every room now. */
  close(): void {
    for (const entry of this.rooms.values()) {
      if (entry.leaving) clearTimeout(entry.leaving);
      entry.room.leave();
    }
    this.rooms.clear();
  }
}

const registries = new WeakMap<TetherClient<AnyRouter>, PresenceRegistry>();

/** The presence registry of a Tether client (made on first use). */
export function presenceRegistryOf(client: TetherClient<AnyRouter>, options?: PresenceRegistryOptions): PresenceRegistry {
  let registry = registries.get(client);
  if (!registry) {
    const made = new PresenceRegistry(presenceTransportOf(client), options);
    registry = made;
    registries.set(client, made);
    // Closing the client leaves its rooms (the server deletes our entries and tells the room).
    client.onClose(() => made.close());
  }
  return registry;
}
