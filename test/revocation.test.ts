// Revocation: a member the owner removes loses the project's presence room and its note's
// document stream at once — each node re-checks what `presence.authorize` and the note's read
// policy read when the change feed brings a change to those reads — not at the room's or the
// document's next activity. Real servers, sockets (WebSocket and SSE) and databases, both engines.
import { LoroDoc } from "loro-crdt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TetherServer } from "@tether/server/adapters/node";
import { engines, type AppStore } from "./support/databases.ts";
import { storeForSuite } from "./support/suiteStore.ts";
import { buildCrdtApp, connect, Peer, serve, startTwoNodes, trpcCode, unb64, type CrdtRouter } from "./support/crdtApp.ts";
import { joinRoom, type RoomView } from "./support/presenceApp.ts";
import { connectAs } from "./support/userClient.ts";
import { waitFor } from "./support/waitFor.ts";
import { tetherInternals } from "@tether/server/internal";

const ROOM = "note:n1";
const errorCode = (error: unknown) => (error as { data?: { code?: string } } | undefined)?.data?.code;

describe.each(engines)("revocation on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildCrdtApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  storeForSuite(engine, (made) => (store = made));

  // Alice owns project p1 and shares it with bob and carol; n1 is its note, `note:n1` its room.
  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Note", "ProjectMember", "Task", "Project", "User", "_tether_crdt_docs", "_tether_crdt_updates" CASCADE`);
    await store.db.user.createMany({ data: ["alice", "bob", "carol"].map((id) => ({ id, email: `${id}@x`, name: id })) });
    await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
    await store.db.projectMember.createMany({ data: [{ projectId: "p1", userId: "bob" }, { projectId: "p1", userId: "carol" }] });
    await store.db.note.create({ data: { id: "n1", projectId: "p1", body: "" } });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app?.tether.close();
  });

  async function start(crdt = {}) {
    app = buildCrdtApp(store, crdt);
    server = await serve(app.router);
  }

  const joined = (...views: RoomView[]) =>
    waitFor("the joins' first messages", () => views.every((v) => v.fulls > 0), { fatal: () => views.find((v) => v.errors.length)?.errors[0] });

  const removals = {
    "a mutation over HTTP": (alice: ReturnType<typeof connect>) => alice.members.remove.mutate({ projectId: "p1", userId: "bob" }),
    "a raw SQL DELETE": () => store.sql.query(`DELETE FROM "ProjectMember" WHERE "projectId" = 'p1' AND "userId" = 'bob'`),
  };

  it.each(Object.keys(removals) as Array<keyof typeof removals>)(
    "removing a member (%s) ends its joins FORBIDDEN and its stream NOT_FOUND at once; re-adding lets it back",
    async (how) => {
      await start();
      const alice = connect(server, "alice", cleanups);
      const carol = connect(server, "carol", cleanups);
      const bob = connect(server, "bob", cleanups);
      const bobOverSse = connectAs<CrdtRouter>(server, "bob", cleanups, { subscriptions: "sse" }).trpc;
      const a = joinRoom(alice, ROOM, "alice-1", cleanups);
      const c = joinRoom(carol, ROOM, "carol-1", cleanups);
      const bobWs = joinRoom(bob, ROOM, "bob-ws", cleanups);
      const bobSse = joinRoom(bobOverSse, ROOM, "bob-sse", cleanups);
      const stream = new Peer(bob, "n1");
      stream.open();
      cleanups.push(() => stream.close());
      await joined(a, c, bobWs, bobSse);
      await waitFor("bob's document stream", () => stream.messages > 0, { fatal: () => stream.errors[0] });
      await Promise.all([
        alice.$presence.set.mutate({ room: ROOM, clientId: "alice-1", state: { name: "alice" } }),
        carol.$presence.set.mutate({ room: ROOM, clientId: "carol-1", state: { name: "carol" } }),
        bob.$presence.set.mutate({ room: ROOM, clientId: "bob-ws", state: { name: "bob" } }),
        bob.$presence.set.mutate({ room: ROOM, clientId: "bob-sse", state: { name: "bob" } }),
      ]);
      await waitFor("everyone to see everyone", () => [a, c, bobWs, bobSse].every((v) => Object.keys(v.states()).length === 4));

      await removals[how](alice);

      // Nothing else happens in the room or the document: the removal alone ends them.
      await waitFor("bob's joins and stream to end", () => bobWs.errors.length > 0 && bobSse.errors.length > 0 && stream.errors.length > 0);
      expect(errorCode(bobWs.errors[0])).toBe("FORBIDDEN");
      expect(errorCode(bobSse.errors[0])).toBe("FORBIDDEN");
      expect(errorCode(stream.errors[0])).toBe("NOT_FOUND");
      await waitFor("the others to see bob's entries gone", () =>
        [a, c].every((v) => Object.keys(v.states()).sort().join() === "alice-1,carol-1"),
      );
      expect(await trpcCode(bob.$presence.set.mutate({ room: ROOM, clientId: "bob-ws", state: { name: "still here?" } }))).toBe("FORBIDDEN");

      // Barrier: alice's later state reaches carol; bob's ended joins got nothing more.
      const seen = [bobWs.messages, bobSse.messages];
      await alice.$presence.set.mutate({ room: ROOM, clientId: "alice-1", state: { name: "alice", after: "revocation" } });
      await waitFor("carol to see alice's later state", () => (c.states()["alice-1"] as { after?: string } | undefined)?.after === "revocation");
      expect([bobWs.messages, bobSse.messages]).toEqual(seen);
      expect(bobWs.states()["alice-1"]).toEqual({ name: "alice" });
      expect(app.tether.presence.peek(ROOM)).not.toHaveProperty("bob-ws");

      // Shared again: bob joins and streams again.
      if (how === "a raw SQL DELETE") await store.sql.query(`INSERT INTO "ProjectMember" (id, "projectId", "userId") VALUES ('m-again', 'p1', 'bob')`);
      else await alice.members.add.mutate({ projectId: "p1", userId: "bob" });
      const again = joinRoom(bob, ROOM, "bob-ws", cleanups);
      await joined(again);
      expect(Object.keys(again.states()).sort()).toEqual(["alice-1", "carol-1"]);
      const back = new Peer(bob, "n1");
      back.open();
      cleanups.push(() => back.close());
      await waitFor("bob's new stream", () => back.messages > 0, { fatal: () => back.errors[0] });
    },
  );

  it("one membership change re-checks each (room, user) and (document, user) once, whatever the number of subscribers", async () => {
    await start();
    const bob = connect(server, "bob", cleanups);
    const views = ["t1", "t2", "t3"].map((tab) => joinRoom(bob, ROOM, tab, cleanups));
    const streams = [1, 2, 3].map(() => new Peer(bob, "n1"));
    for (const s of streams) s.open();
    cleanups.push(() => streams.forEach((s) => s.close()));
    await joined(...views);
    await waitFor("bob's streams", () => streams.every((s) => s.messages > 0));
    const before = { presence: app.tether.presence.stats().rechecks, crdt: app.tether.stats.crdt().accessRechecks };
    await store.sql.query(`DELETE FROM "ProjectMember" WHERE "userId" = 'bob'`);
    await waitFor("every join and stream to end", () => views.every((v) => v.errors.length > 0) && streams.every((s) => s.errors.length > 0));
    expect(app.tether.presence.stats().rechecks - before.presence).toBe(1);
    expect(app.tether.stats.crdt().accessRechecks - before.crdt).toBe(1);
  });

  it("a stream consumer that stops reading stays bounded, and on resuming converges through one folded update", async () => {
    const bound = 4;
    await start({ maxQueuedStreamMessages: bound });
    const writer = new Peer(connect(server, "alice", cleanups), "n1");
    const watcher = new Peer(connect(server, "carol", cleanups), "n1");
    writer.open();
    watcher.open();
    cleanups.push(() => (writer.close(), watcher.close()));
    await waitFor("the streams", () => writer.messages > 0 && watcher.messages > 0);

    // Bob's stream, read server-side: one message, then nothing while the writer makes 40 edits.
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    const stalled = tetherInternals(app.tether).crdt.stream({ user: { id: "bob" } }, { model: "Note", id: "n1", field: "body" }, stop.signal);
    const local = new LoroDoc();
    const first = await stalled.next();
    local.import(unb64(first.value!.update));
    for (let i = 0; i < 40; i++) {
      writer.doc.getText("body").insert(writer.text.length, `${i},`);
      writer.doc.commit();
      await writer.push();
    }
    // The watcher's stream is fed in the same fan-out as bob's: once it has everything, so has bob's queue.
    await waitFor("the watcher to have every edit", () => watcher.text === writer.text);
    const stats = app.tether.stats.crdt();
    expect(stats.streamQueuedMessages).toBeLessThanOrEqual(bound);
    expect(stats.streamFolds).toBeGreaterThan(0);

    let received = 0;
    while (local.getText("body").toString() !== writer.text) {
      const next = await stalled.next();
      local.import(unb64(next.value!.update));
      received += 1;
    }
    expect(received).toBeLessThanOrEqual(bound);
    expect(local.getText("body").toString()).toBe(writer.text);
  });
});

// Each node re-checks its own subscribers from its own change feed: a removal made through node A
// ends bob's join and stream on node B, and A's members see bob's entry go (through the relay).
describe.runIf(engines.includes("postgres"))("revocation across two nodes (Postgres)", () => {
  it("a removal on node A ends the member's join and stream on node B", async () => {
    const { servers, close } = await startTwoNodes();
    const cleanups: Array<() => unknown> = [];
    try {
      const alice = connect(servers[0]!, "alice", cleanups);
      const bob = connect(servers[1]!, "bob", cleanups);
      const a = joinRoom(alice, ROOM, "alice-1", cleanups);
      const b = joinRoom(bob, ROOM, "bob-1", cleanups);
      const stream = new Peer(bob, "n1");
      stream.open();
      cleanups.push(() => stream.close());
      await waitFor("the joins and the stream", () => a.fulls > 0 && b.fulls > 0 && stream.messages > 0, { fatal: () => a.errors[0] ?? b.errors[0] ?? stream.errors[0] });
      await bob.$presence.set.mutate({ room: ROOM, clientId: "bob-1", state: { name: "bob" } });
      await waitFor("alice (node A) to see bob (node B)", () => "bob-1" in a.states());

      await alice.members.remove.mutate({ projectId: "p1", userId: "bob" });
      await waitFor("bob's join and stream on node B to end", () => b.errors.length > 0 && stream.errors.length > 0);
      expect(errorCode(b.errors[0])).toBe("FORBIDDEN");
      expect(errorCode(stream.errors[0])).toBe("NOT_FOUND");
      await waitFor("alice to see bob's entry gone", () => !("bob-1" in a.states()));
    } finally {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      await close();
    }
  });
});
