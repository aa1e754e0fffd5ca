// Two TetherClients in one Node process (two users, e.g. a script, a bot, an SSR worker or a test)
// get the same default presence clientId (tabPresenceId() is per process), so the second user to
// join a room is refused for good: FORBIDDEN "this clientId is held by another user in this room".
// Nothing in the docs says a Node process with several clients must set `presence.clientId`.
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createTetherClient, type TetherClient } from "@tether/client";
import { presenceRegistryOf } from "@tether/client/presence";
import { createTestStore, engines } from "../support/databases.ts";
import { buildCrdtApp, serve, type CrdtRouter } from "../support/crdtApp.ts";
import { waitFor } from "../support/waitFor.ts";
import { seedSharedNote } from "../support/seed.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe.each(engines)("presence clientId default (%s)", (engine) => {
  it("two users' clients in one process can both join a room they may both join", { timeout: 120_000 }, async () => {
    const { store, close } = await createTestStore(engine);
    cleanups.push(close);
    await seedSharedNote(store.db);
    const app = buildCrdtApp(store);
    await app.tether.start();
    cleanups.push(() => app.tether.close());
    const server = await serve(app.router);
    cleanups.push(() => server.close());
    const make = (user: string): TetherClient<CrdtRouter> => {
      const c = createTetherClient<CrdtRouter>({
        url: `${server.url}/trpc`,
        headers: { "x-user": user },
        subscriptions: { transport: "ws", url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user } },
      });
      cleanups.push(() => c.close());
      return c;
    };
    const alice = make("alice");
    const bob = make("bob");
    const a = presenceRegistryOf(alice).acquire("note:n1", { who: "alice" });
    const b = presenceRegistryOf(bob).acquire("note:n1", { who: "bob" });
    cleanups.push(() => a.release(), () => b.release());
    await waitFor("both settle", () => a.room.get().status !== "joining" && b.room.get().status !== "joining" && a.room.get().status !== "idle" && b.room.get().status !== "idle", { timeoutMs: 30_000 });
    await waitFor("both joined or one refused", () => (a.room.get().status === "joined" && b.room.get().status === "joined") || a.room.get().status === "error" || b.room.get().status === "error", { timeoutMs: 30_000 });
    expect(a.room.clientId === b.room.clientId ? `shared clientId ${a.room.clientId}` : "distinct").toBe("distinct");
    expect({ alice: a.room.get().status, bob: b.room.get().status, bobError: String((b.room.get().error as Error | null)?.message ?? null) }).toEqual({ alice: "joined", bob: "joined", bobError: "null" });
    await waitFor("each sees the other", () => a.room.get().peers.some((p) => !p.self) && b.room.get().peers.some((p) => !p.self), { timeoutMs: 30_000 });
  });
});
