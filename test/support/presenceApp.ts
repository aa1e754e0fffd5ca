// What the presence tests share: a Tether app with nothing but presence, and a client's view of a
// room (a local EphemeralStore that only the server's messages change).
import type { TRPCClient } from "@trpc/client";
import { EphemeralStore } from "loro-crdt";
import { initTether, type PresenceOptions } from "@tether/server";
import { schema } from "../../generated/tether/index.ts";
import type { AppStore } from "./databases.ts";

export interface PresenceCtx {
  user: { id: string } | null;
}

export function buildPresenceApp(store: AppStore, presence: PresenceOptions<PresenceCtx>) {
  const tether = initTether<PresenceCtx>().create({ store, schema, presence });
  return { tether, router: tether.appRouter({}) };
}
export type PresenceRouter = ReturnType<typeof buildPresenceApp>["router"];

export interface RoomView {
  states(): Record<string, unknown>;
  /** Whole-room messages received (the first, and any after a backlog was replaced). */
  fulls: number;
  messages: number;
  /** The server's entry timeout, from the first message. */
  timeoutMs: number | undefined;
  errors: unknown[];
  leave(): void;
}

/** Any Tether app's client: `$presence` is the same on every router. */
export type PresenceClient = Pick<TRPCClient<PresenceRouter>, "$presence">;

/** Joins `room` as `clientId`; `cleanups` gets the leave. */
export function joinRoom(trpc: PresenceClient, room: string, clientId: string, cleanups: Array<() => unknown>): RoomView {
  // Never expires locally: what a client shows is what the server says (its clock decides expiry).
  let local = new EphemeralStore(2 ** 31 - 1);
  const view: RoomView = {
    states: () => local.getAllStates() as Record<string, unknown>,
    fulls: 0,
    messages: 0,
    timeoutMs: undefined,
    errors: [],
    leave: () => undefined,
  };
  const subscription = trpc.$presence.join.subscribe(
    { room, clientId },
    {
      onData: (message) => {
        if (message.full) {
          local.destroy();
          local = new EphemeralStore(2 ** 31 - 1);
          view.fulls += 1;
          view.timeoutMs = message.timeoutMs;
        }
        local.apply(Buffer.from(message.update, "base64"));
        view.messages += 1;
      },
      onError: (error) => view.errors.push(error),
    },
  );
  let open = true;
  view.leave = () => {
    if (!open) return;
    open = false;
    subscription.unsubscribe();
  };
  cleanups.push(() => {
    view.leave();
    local.destroy();
  });
  return view;
}
