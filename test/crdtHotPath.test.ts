// The CRDT hot path (issue 18) on both engines: relay first (an update reaches the document's
// other subscribers before it is durable), acks only after COMMIT, group commit, the cached
// write verdict (denied and revoked writers), the debounced projection, and many concurrent
// pushers converging with the column equal to their text.
import { TRPCClientError } from "@trpc/client";
import { LoroDoc } from "loro-crdt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CrdtOptions } from "@tether/server";
import type { TetherServer } from "@tether/server/adapters/node";
import { engines, type AppStore } from "./support/databases.ts";
import { storeForSuite } from "./support/suiteStore.ts";
import { b64, buildCrdtApp, connect, Peer, serve, trpcCode, type CrdtRouter } from "./support/crdtApp.ts";
import { waitFor } from "./support/waitFor.ts";
import { tetherInternals } from "@tether/server/internal";

describe.each(engines)("CRDT hot path on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildCrdtApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  storeForSuite(engine, (made) => (store = made));

  async function start(crdt: CrdtOptions = {}) {
    app = buildCrdtApp(store, crdt);
    server = await serve(app.router);
  }

  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Note", "ProjectMember", "Task", "Project", "User", "_tether_crdt_docs", "_tether_crdt_updates" CASCADE`);
    await store.db.user.createMany({ data: ["alice", "bob", "carol", "dave"].map((id) => ({ id, email: `${id}@x`, name: id })) });
    await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
    await store.db.projectMember.createMany({ data: [{ projectId: "p1", userId: "bob" }, { projectId: "p1", userId: "carol" }] });
    await store.db.note.create({ data: { id: "n1", projectId: "p1", body: "" } });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app?.tether.close();
  });

  const column = async () => (await store.db.note.findUnique({ where: { id: "n1" } }))?.body;
  const storedText = async () => {
    const rows = await store.sql.query<{ data: Uint8Array }>(
      `SELECT snapshot AS data FROM "_tether_crdt_docs" WHERE row_id = 'n1'
       UNION ALL (SELECT data FROM "_tether_crdt_updates" WHERE row_id = 'n1' ORDER BY id)`,
    );
    const doc = new LoroDoc();
    if (rows.length > 0) doc.importBatch(rows.map((r) => r.data));
    return doc.getText("body").toString();
  };
  const typed = (peer: Peer, text: string) => {
    peer.doc.getText("body").insert(peer.text.length, text);
    peer.doc.commit();
  };

  it("relays an update to the other subscribers before it is durable; the ack comes after COMMIT", async () => {
    await start();
    const alice = new Peer(connect(server, "alice", cleanups), "n1");
    const bob = new Peer(connect(server, "bob", cleanups), "n1");
    bob.open();
    await waitFor("bob's stream", () => bob.messages > 0, { fatal: () => bob.errors[0] });
    typed(alice, "warm ");
    await alice.push(); // the write verdict is cached from here on
    await waitFor("bob to see the first edit", () => bob.text === "warm ");

    // Hold the note's row lock: the next group commit cannot start its transaction's work.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let locked: () => void = () => undefined;
    const lockHeld = new Promise<void>((resolve) => (locked = resolve));
    const holder = store.sql.transaction(async (tx) => {
      await tx.query(`SELECT 1 FROM "Note" WHERE id = 'n1' FOR UPDATE`);
      locked();
      await gate;
    });
    await lockHeld;
    typed(alice, "fast");
    let acked = false;
    const push = alice.push().then(() => (acked = true));
    await waitFor("bob to receive the update while its commit waits", () => bob.text === "warm fast");
    expect(acked).toBe(false);
    // (PGlite runs one transaction at a time: only Postgres can read the store meanwhile.)
    if (engine === "postgres") expect(await storedText()).toBe("warm ");
    release();
    await holder;
    await push;
    // Acknowledged: durable.
    expect(await storedText()).toBe("warm fast");
  });

  it("many concurrent pushers converge; the stored document and the column equal their text", { timeout: 120_000 }, async () => {
    await start();
    const users = ["alice", "bob"];
    const peers = Array.from({ length: 6 }, (_, i) => new Peer(connect(server, users[i % 2]!, cleanups), "n1"));
    for (const peer of peers) peer.open();
    await waitFor("every stream", () => peers.every((p) => p.messages > 0), { fatal: () => peers.find((p) => p.errors[0])?.errors[0] });
    await Promise.all(
      peers.map(async (peer, p) => {
        for (let k = 0; k < 8; k++) {
          const text = peer.doc.getText("body");
          text.insert((k * 7 + p) % (text.length + 1), String.fromCharCode(97 + p));
          peer.doc.commit();
          await peer.push();
        }
      }),
    );
    await waitFor(
      "every peer to converge",
      () => peers.every((p) => p.text.length === 48 && p.text === peers[0]!.text),
      { fatal: () => peers.find((p) => p.errors[0])?.errors[0] },
    );
    expect(await storedText()).toBe(peers[0]!.text);
    await waitFor("the column to equal the text", async () => (await column()) === peers[0]!.text);
    expect(app.tether.stats.crdt().pushes).toBeGreaterThanOrEqual(48);
  });

  it("group commit: pushes queued behind a commit go in one transaction, each acked after it", async () => {
    await start({ projectionDelayMs: 3_600_000 }); // no column writes: no access re-checks meanwhile
    const peers = Array.from({ length: 6 }, (_, i) => new Peer(connect(server, i % 2 ? "bob" : "alice", cleanups), "n1"));
    for (const [i, peer] of peers.entries()) {
      typed(peer, String(i)); // warms each caller's write verdict
      await peer.push();
    }
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let locked: () => void = () => undefined;
    const lockHeld = new Promise<void>((resolve) => (locked = resolve));
    const holder = store.sql.transaction(async (tx) => {
      await tx.query(`SELECT 1 FROM "Note" WHERE id = 'n1' FOR UPDATE`);
      locked();
      await gate;
    });
    await lockHeld;
    const before = app.tether.stats.crdt().commits;
    const acks = peers.map((peer, i) => {
      typed(peer, `-${i}`);
      return peer.push();
    });
    await waitFor("every push to wait for the commit", () => app.tether.stats.crdt().pushesInFlight === peers.length);
    release();
    await holder;
    await Promise.all(acks);
    // The first may have taken its transaction alone before the others arrived; the rest share one.
    expect(app.tether.stats.crdt().commits - before).toBeLessThanOrEqual(2);
    expect(app.tether.stats.crdt().pushesInFlight).toBe(0);
    const text = await storedText();
    for (let i = 0; i < peers.length; i++) expect(text).toContain(`-${i}`);
  });

  it("a denied user cannot push; a revoked writer's next push is refused and its stream ends", async () => {
    await start();
    const update = (text: string) => {
      const doc = new LoroDoc();
      doc.getText("body").insert(0, text);
      doc.commit();
      return b64(doc.export({ mode: "update" }));
    };
    const target = { model: "Note", id: "n1", field: "body" };
    const dave = connect(server, "dave", cleanups);
    const carol = connect(server, "carol", cleanups);
    const alice = new Peer(connect(server, "alice", cleanups), "n1");
    alice.open();
    await waitFor("alice's stream", () => alice.messages > 0);
    expect(await trpcCode(dave.$crdt.push.mutate({ ...target, update: update("intruder") }))).toBe("NOT_FOUND");
    expect(await trpcCode(carol.$crdt.push.mutate({ ...target, update: update("reader") }))).toBe("FORBIDDEN");

    const bobClient = connect(server, "bob", cleanups);
    const bob = new Peer(bobClient, "n1");
    bob.open();
    typed(bob, "bob ");
    await bob.push();
    await waitFor("alice to see bob", () => alice.text === "bob ");
    await store.db.projectMember.deleteMany({ where: { userId: "bob" } });
    await waitFor("bob's stream to end", () => bob.errors.length > 0);
    expect((bob.errors[0] as TRPCClientError<CrdtRouter>).data?.code).toBe("NOT_FOUND");
    typed(bob, "still here?");
    expect(await trpcCode(bob.push())).toBe("NOT_FOUND");
    // A barrier edit by alice arrives; bob's refused edit never did.
    typed(alice, "| alice");
    await alice.push();
    await waitFor("the barrier in the store", async () => (await storedText()) === "bob | alice");
    expect(alice.text).toBe("bob | alice");
  });

  it("projects debounced: not before the delay, at once when the last subscriber leaves, and on flush", async () => {
    await start({ projectionDelayMs: 3_600_000 });
    const alice = new Peer(connect(server, "alice", cleanups), "n1");
    alice.open();
    await waitFor("alice's stream", () => alice.messages > 0);
    for (const part of ["one ", "two ", "three"]) {
      typed(alice, part);
      await alice.push();
    }
    // Durable, streamed, but the column waits (a barrier: an ordinary query sees the old value).
    expect(await storedText()).toBe("one two three");
    expect(await column()).toBe("");
    await tetherInternals(app.tether).crdt.flushProjections();
    expect(await column()).toBe("one two three");
    const projections = app.tether.stats.crdt().projections;
    expect(projections).toBe(1); // three commits, one projection

    typed(alice, "!");
    await alice.push();
    expect(await column()).toBe("one two three");
    alice.close(); // the last subscriber on this node leaves: projected now
    await waitFor("the projection when the last editor left", async () => (await column()) === "one two three!");
  });

  it("a projection still due when a node stops is done by the next node's start (from the persisted document)", async () => {
    await start({ projectionDelayMs: 3_600_000 });
    const alice = new Peer(connect(server, "alice", cleanups), "n1");
    typed(alice, "acked before the node died");
    await alice.push(); // acked: durable; the column is not written yet
    expect(await column()).toBe("");
    // A node starting on the same database (as after a SIGKILL of the first, which never flushes).
    const next = buildCrdtApp(store, {});
    cleanups.push(() => next.tether.close());
    await next.tether.start();
    expect(await column()).toBe("acked before the node died");
  });

  it("a column written by someone else between projections is merged into the document, not overwritten", async () => {
    await start({ projectionDelayMs: 3_600_000 });
    const alice = new Peer(connect(server, "alice", cleanups), "n1");
    alice.open();
    await waitFor("alice's stream", () => alice.messages > 0);
    typed(alice, "doc");
    await alice.push();
    await tetherInternals(app.tether).crdt.flushProjections();
    expect(await column()).toBe("doc");
    typed(alice, " edited");
    await alice.push(); // committed; its projection is still due
    await store.sql.query(`UPDATE "Note" SET body = 'SQL: doc' WHERE id = 'n1'`);
    await tetherInternals(app.tether).crdt.flushProjections();
    await waitFor("alice to get the merged text", () => alice.text === "SQL: doc edited", { fatal: () => alice.errors[0] });
    await waitFor("the column to hold the merged text", async () => (await column()) === "SQL: doc edited");
  });
});
