import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import type { PresencePeer, PresenceRoom, PresenceSnapshot, PresenceStatus } from "../presence/presenceRoom.ts";
import { presenceRegistryOf } from "../presence/registry.ts";

export interface UsePresenceResult<State> {
  /** This tab first (`self: true`, when it has a state), then everyone else in the room. */
  peers: readonly PresencePeer<State>[];
  /** Replaces this tab's state (or updates it from the previous one); shown at once, sent when joined. */
  setState(next: State | ((previous: State | undefined) => State)): void;
  status: PresenceStatus;
  /** This tab's key in the room. */
  clientId: string;
  /** Why the room refused us, or why the last state was not accepted. */
  error: unknown;
}

const noop = () => undefined;

/**
 * `usePresence(room, myState)` against a given Tether client (the React binding passes the
 * provider's). `myState` is this tab's state: sent when it changes (compared as JSON, so an
 * inline object literal does not resend every render); `setState` changes it imperatively in
 * between (e.g. on every cursor move) until `myState` changes again. Omit `myState` to watch a
 * room without appearing in it.
 */
export function usePresenceWith<State>(
  tether: TetherClient<AnyRouter>,
  room: string,
  myState?: State,
): UsePresenceResult<State> {
  const registry = presenceRegistryOf(tether);
  const latest = useRef<State | undefined>(myState);
  const [joined, setJoined] = useState<PresenceRoom<State> | null>(null);

  useEffect(() => {
    const lease = registry.acquire<State>(room, latest.current);
    // A shared room may hold another component's state; ours wins from here on.
    if (latest.current !== undefined && lease.room.getState() !== latest.current) lease.room.setState(latest.current);
    setJoined(lease.room);
    return () => {
      lease.release();
      setJoined((current) => (current === lease.room ? null : current));
    };
  }, [registry, room]);

  const stateKey = myState === undefined ? undefined : JSON.stringify(myState);
  useEffect(() => {
    if (myState === undefined) return;
    latest.current = myState;
    joined?.setState(myState);
    // Keyed by the JSON: a new object with the same content is not a change.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [joined, stateKey]);

  // Before the effect has joined (first render, server rendering): this tab alone, idle.
  const idle = useMemo<PresenceSnapshot<State>>(
    () => ({
      status: "idle",
      peers: myState === undefined ? [] : [{ clientId: registry.clientId, state: myState, self: true }],
      error: null,
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [registry, stateKey],
  );
  const subscribe = useCallback((onChange: () => void) => (joined ? joined.subscribe(onChange) : noop), [joined]);
  const snapshot = useSyncExternalStore(
    subscribe,
    () => (joined ? joined.get() : idle),
    () => idle,
  );

  const setState = useCallback(
    (next: State | ((previous: State | undefined) => State)) => {
      const value = typeof next === "function" ? (next as (previous: State | undefined) => State)(joined?.getState() ?? latest.current) : next;
      latest.current = value;
      joined?.setState(value);
    },
    [joined],
  );

  return { peers: snapshot.peers, setState, status: snapshot.status, clientId: registry.clientId, error: snapshot.error };
}
