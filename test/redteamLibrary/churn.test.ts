// Client registries under mount/unmount churn (rapid acquire/release of the same live query, CRDT
// session and presence room), and clients closed while their streams are still opening. Checked
// on the server: no leaked subscriptions or presence members once everything is released/closed.
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createTetherClient, watchQuery, type TetherClient } from "@tether/client";
import { crdtSessionsOf } from "@tether/client/crdt";
import { presenceRegistryOf } from "@tether/client/presence";
import { createTestStore, engines } from "../support/databases.ts";
import { buildCrdtApp, serve, type CrdtRouter } from "../support/crdtApp.ts";
import { waitFor } from "../support/waitFor.ts";
import { seedSharedNote } from "../support/seed.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const unhandled: unknown[] = [];
process.on("unhandledRejection", (e) => unhandled.push(e));

type Note = { id: string; body: string } | null;
const key = [["notes", "get"], { input: { id: "n1" }, type: "query" }];

async function setup(engine: "pglite" | "postgres") {
  const { store, close } = await createTestStore(engine);
  cleanups.push(close);
  await seedSharedNote(store.db);
  const app = buildCrdtApp(store);
  await app.tether.start();
  cleanups.push(() => app.tether.close());
  const server = await serve(app.router);
  cleanups.push(() => server.close());
  let n = 0;
  const make = (user: string, push = true): TetherClient<CrdtRouter> => {
    const c = createTetherClient<CrdtRouter>({
      url: `${server.url}/trpc`,
      headers: { "x-user": user },
      subscriptions: { transport: "ws", url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user } },
      crdt: { persistence: null },
      presence: { clientId: `${user}-${++n}` },
    });
    if (push) cleanups.push(() => c.close());
    return c;
  };
  return { app, make };
}

describe.each(engines)("registry churn (%s)", (engine) => {
  it("rapid acquire/release of one live query, CRDT session and room, then one holder: works, nothing leaks", { timeout: 180_000 }, async () => {
    const { app, make } = await setup(engine);
    const alice = make("alice");
    const bob = make("bob");
    for (let i = 0; i < 200; i++) {
      const stop = watchQuery<Note>(alice, { path: "notes.get", input: { id: "n1" }, queryKey: key }, () => undefined);
      const doc = crdtSessionsOf(alice).acquire({ model: "Note", id: "n1", field: "body" });
      const room = presenceRegistryOf(alice).acquire("note:n1", { i });
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
      stop();
      doc.release();
      room.release();
    }
    let note: Note | undefined;
    let status = "";
    const stop = watchQuery<Note>(alice, { path: "notes.get", input: { id: "n1" }, queryKey: key }, (d, s) => ((note = d), (status = s)));
    const doc = crdtSessionsOf(alice).acquire({ model: "Note", id: "n1", field: "body" });
    const room = presenceRegistryOf(alice).acquire("note:n1", { final: true });
    const bDoc = crdtSessionsOf(bob).acquire({ model: "Note", id: "n1", field: "body" });
    const bRoom = presenceRegistryOf(bob).acquire("note:n1", { bob: true });
    cleanups.push(() => bDoc.release(), () => bRoom.release());
    // Not `status === "live"`: a watcher added to an entry already live hears nothing until the next
    // change (watchQueryReuse.test.ts), which is what the first version of this test tripped on.
    await waitFor("alice synced + joined", () => doc.session.state.status === "synced" && room.room.get().status === "joined", { timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}: live=${status} ${JSON.stringify(note)} crdt=${doc.session.state.status} ${String(doc.session.state.error)} presence=${room.room.get().status} ${String(room.room.get().error)} server=${JSON.stringify(app.tether.stats.live())}`);
    });
    await waitFor("bob synced", () => bDoc.session.state.status === "synced", { timeoutMs: 30_000 });
    bDoc.session.state.doc!.getText("body").insert(0, "from bob");
    bDoc.session.state.doc!.commit();
    await waitFor("alice's doc gets bob's edit", () => doc.session.state.doc?.getText("body").toString() === "from bob", { timeoutMs: 30_000 });
    await waitFor("alice's live query gets the projection", () => note?.body === "from bob", { timeoutMs: 30_000 });
    await waitFor("bob sees alice's final state only", () => {
      const others = bRoom.room.get().peers.filter((p) => !p.self);
      return others.length === 1 && (others[0]!.state as { final?: boolean }).final === true;
    }, { timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}: bob sees ${JSON.stringify(bRoom.room.get())}; alice's room ${JSON.stringify(room.room.get())}; server ${JSON.stringify(app.tether.presence.peek("note:n1"))}`);
    });
    stop();
    doc.release();
    room.release();
    await waitFor("alice gone from the room on the server", () => Object.keys(app.tether.presence.peek("note:n1") ?? {}).length === 1, { timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(app.tether.presence.peek("note:n1"))}`);
    });
    await waitFor("alice's live subscription released on the server", () => app.tether.stats.live().subscriptions === 0, { timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(app.tether.stats.live())}`);
    });
    expect(unhandled).toEqual([]);
  });

  it("50 clients closed while their streams are still opening: close() resolves, server holds nothing", { timeout: 180_000 }, async () => {
    const { app, make } = await setup(engine);
    const closes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      const c = make(i % 2 ? "alice" : "bob", false);
      watchQuery<Note>(c, { path: "notes.get", input: { id: "n1" }, queryKey: key }, () => undefined);
      crdtSessionsOf(c).acquire({ model: "Note", id: "n1", field: "body" });
      presenceRegistryOf(c).acquire("note:n1", { i });
      if (i % 2) await new Promise((r) => setImmediate(r));
      closes.push(c.close());
    }
    const outcome = await Promise.race([Promise.all(closes).then(() => "closed"), new Promise((r) => setTimeout(() => r("close() hung 20s"), 20_000))]);
    expect(outcome).toBe("closed");
    await waitFor("no live subscriptions left", () => app.tether.stats.live().subscriptions === 0, { timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(app.tether.stats.live())}`);
    });
    await waitFor("no presence members left", () => Object.keys(app.tether.presence.peek("note:n1") ?? {}).length === 0, { timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(app.tether.presence.peek("note:n1"))}`);
    });
    expect(unhandled).toEqual([]);
  });
});

describe.each(engines)("presence acquire after release (remount) (%s)", (engine) => {
  it("acquire(room, newState) within the release delay publishes newState", { timeout: 120_000 }, async () => {
    const { app, make } = await setup(engine);
    const alice = make("alice");
    const first = presenceRegistryOf(alice).acquire("note:n1", { v: 1 });
    await waitFor("joined", () => first.room.get().status === "joined", { timeoutMs: 30_000 });
    first.release();
    const second = presenceRegistryOf(alice).acquire("note:n1", { v: 2 });
    cleanups.push(() => second.release());
    await waitFor("server has v:2", () => JSON.stringify(Object.values(app.tether.presence.peek("note:n1") ?? {})) === '[{"v":2}]', { timeoutMs: 10_000 }).catch((e) => {
      throw new Error(`${e.message}: server ${JSON.stringify(app.tether.presence.peek("note:n1"))}, local ${JSON.stringify(second.room.getState())}`);
    });
  });
});
