// CRDT documents end to end: real tRPC clients over the WebSocket transport (subscriptions) and
// HTTP batching (pull/push) against `createTetherServer`, each client a raw `LoroDoc` from
// loro-crdt, on both engines; then two nodes (two stores, two Tethers, two servers) on one
// Postgres database.
import { TRPCClientError } from "@trpc/client";
import { LoroDoc, VersionVector } from "loro-crdt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createMetrics, type ChangeFeed, type CrdtOptions } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { createChangeFeed, tetherInternals } from "@tether/server/internal";
import { engines, type AppStore } from "./support/databases.ts";
import { storeForSuite } from "./support/suiteStore.ts";
import { b64, buildCrdtApp, connect, Peer, random, serve, startTwoNodes, trpcCode, unb64, type Client, type CrdtRouter } from "./support/crdtApp.ts";
import { waitFor } from "./support/waitFor.ts";


describe.each(engines)("CRDT documents on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildCrdtApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  storeForSuite(engine, (made) => (store = made));

  async function start(crdt: CrdtOptions = {}, feed?: ChangeFeed) {
    app = buildCrdtApp(store, crdt, feed);
    server = await serve(app.router);
  }

  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Note", "ProjectMember", "Task", "Project", "User", "_tether_crdt_docs", "_tether_crdt_updates" CASCADE`);
    await store.db.user.createMany({
      data: ["alice", "bob", "carol", "dave"].map((id) => ({ id, email: `${id}@x`, name: id })),
    });
    await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
    await store.db.projectMember.createMany({ data: [{ projectId: "p1", userId: "bob" }, { projectId: "p1", userId: "carol" }] });
    await store.db.note.create({ data: { id: "n1", projectId: "p1", body: "" } });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app?.tether.close();
  });

  const column = async (id = "n1") => (await store.db.note.findUnique({ where: { id } }))?.body;
  const sidecar = async () => ({
    docs: await store.sql.query(
      `SELECT model, row_id, field, encode(snapshot, 'hex') AS snapshot, encode(version, 'hex') AS version, pending_updates FROM "_tether_crdt_docs" ORDER BY 1, 2, 3`,
    ),
    updates: await store.sql.query(`SELECT id::text, row_id, encode(data, 'hex') AS data FROM "_tether_crdt_updates" ORDER BY id`),
  });

  it("three clients editing concurrently (one offline for a while) converge; the column equals the text", async () => {
    await start();
    const peers = ["alice", "bob", "alice"].map((user) => new Peer(connect(server, user, cleanups), "n1"));
    for (const peer of peers) peer.open();
    const fatal = () => peers.flatMap((p) => p.errors)[0];
    await waitFor("every stream's first message", () => peers.every((p) => p.messages > 0), { fatal });

    const rnd = random(42);
    const words = ["tether ", "loro ", "crdt ", "sync ", "é✓ ", "\n"];
    const edit = (peer: Peer) => {
      const text = peer.doc.getText("body");
      if (text.length > 8 && rnd() < 0.35) {
        const at = Math.floor(rnd() * (text.length - 3));
        text.delete(at, 1 + Math.floor(rnd() * 3));
      } else {
        text.insert(Math.floor(rnd() * (text.length + 1)), words[Math.floor(rnd() * words.length)]!);
      }
      peer.doc.commit();
    };
    const offline = peers[2]!;
    for (let round = 0; round < 24; round++) {
      if (round === 8) offline.close(); // goes offline: keeps editing, pushes nothing, hears nothing
      if (round === 16) offline.open(); // back: resubscribes from its version …
      const isOffline = round >= 8 && round < 16;
      // Interleaved: every peer edits its own copy, then all pushes race each other.
      for (const peer of peers) edit(peer);
      await Promise.all(peers.filter((p) => !(isOffline && p === offline)).map((p) => p.push()));
    }
    await offline.push(); // … and sends what it wrote offline (already in the last rounds' pushes too)

    await waitFor("all three copies and the column to agree", async () => {
      const texts = peers.map((p) => p.text);
      return texts.every((t) => t === texts[0]) && (await column()) === texts[0];
    }, { fatal });
    const final = peers[0]!.text;
    expect(final.length).toBeGreaterThan(20);
    // The offline peer's edits made it in (each peer inserted words; nothing is lost by merging).
    const pulled = await connect(server, "bob", cleanups).$crdt.pull.query({ model: "Note", id: "n1", field: "body" });
    const fresh = new LoroDoc();
    fresh.import(unb64(pulled.update));
    expect(fresh.getText("body").toString()).toBe(final);
    await waitFor("the projection into the column", async () => (await column()) === final);
  });

  it("syncs with a peer using loro-crdt directly: pull from scratch, push, pull from a version", async () => {
    await start();
    const client = connect(server, "alice", cleanups);
    const target = { model: "Note", id: "n1", field: "body" };

    const first = await client.$crdt.pull.query(target);
    const a = new LoroDoc();
    a.import(unb64(first.update));
    expect(a.getText("body").toString()).toBe("");

    a.getText("body").insert(0, "Hello from a raw LoroDoc");
    a.commit();
    const pushed = await client.$crdt.push.mutate({ ...target, update: b64(a.export({ mode: "update" })) });
    expect(VersionVector.decode(unb64(pushed.version)).compare(a.oplogVersion())).toBe(0);
    await waitFor("the projection into the column", async () => (await column()) === "Hello from a raw LoroDoc");

    // Another raw peer that already has the first state asks only for what it lacks.
    const b = new LoroDoc();
    b.import(a.export({ mode: "snapshot" }));
    a.getText("body").insert(5, ",");
    a.commit();
    await client.$crdt.push.mutate({ ...target, update: b64(a.export({ mode: "update", from: b.oplogVersion() })) });
    const delta = await client.$crdt.pull.query({ ...target, version: b64(b.oplogVersion().encode()) });
    const whole = await client.$crdt.pull.query(target);
    expect(unb64(delta.update).length).toBeLessThan(unb64(whole.update).length);
    b.import(unb64(delta.update));
    expect(b.getText("body").toString()).toBe("Hello, from a raw LoroDoc");
    expect(VersionVector.decode(unb64(delta.version)).compare(b.oplogVersion())).toBe(0);

    // A stream opened from an up-to-date version starts with an empty-but-valid update.
    const peer = new Peer(client, "n1");
    peer.doc.import(b.export({ mode: "snapshot" }));
    peer.open();
    await waitFor("the catch-up message", () => peer.messages === 1, { fatal: () => peer.errors[0] });
    expect(peer.text).toBe("Hello, from a raw LoroDoc");
  });

  it("rejects malformed, oversized and dangling updates with typed errors and changes nothing", async () => {
    await start({ maxUpdateBytes: 4096 });
    const client = connect(server, "alice", cleanups);
    const target = { model: "Note", id: "n1", field: "body" };
    const seed = new LoroDoc();
    seed.getText("body").insert(0, "kept");
    seed.commit();
    await client.$crdt.push.mutate({ ...target, update: b64(seed.export({ mode: "update" })) });
    await tetherInternals(app.tether).crdt.flushProjections(); // the column is written debounced

    const rowBefore = await store.db.note.findUnique({ where: { id: "n1" } });
    const sidecarBefore = await sidecar();
    const changesBefore = await store.sql.query(`SELECT count(*)::int AS n FROM "_tether_changes"`);
    expect(sidecarBefore.docs).toHaveLength(1);

    const valid = new LoroDoc();
    valid.getText("body").insert(0, "x".repeat(100));
    valid.commit();
    const corrupted = valid.export({ mode: "update" });
    corrupted[corrupted.length - 5] = corrupted[corrupted.length - 5]! ^ 0xff;
    // An update that depends on changes the server never saw.
    const other = new LoroDoc();
    other.getText("body").insert(0, "base");
    other.commit();
    const base = other.oplogVersion();
    other.getText("body").insert(4, " more");
    other.commit();
    const dangling = other.export({ mode: "update", from: base });
    const big = new LoroDoc();
    big.getText("body").insert(0, Array.from({ length: 3000 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join(""));
    big.commit();

    const push = (update: string, extra: Partial<typeof target> = {}) =>
      trpcCode(client.$crdt.push.mutate({ ...target, ...extra, update }));
    expect(await push("not base64 at all!")).toBe("BAD_REQUEST");
    expect(await push(b64(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])))).toBe("BAD_REQUEST");
    expect(await push(b64(corrupted))).toBe("BAD_REQUEST");
    expect(await push(b64(dangling))).toBe("BAD_REQUEST");
    expect(await push("")).toBe("BAD_REQUEST");
    expect(await push(b64(big.export({ mode: "update" })))).toBe("PAYLOAD_TOO_LARGE");
    expect(await push(b64(valid.export({ mode: "update" })), { field: "projectId" })).toBe("BAD_REQUEST");
    expect(await push(b64(valid.export({ mode: "update" })), { model: "Nope" })).toBe("BAD_REQUEST");
    expect(await trpcCode(client.$crdt.pull.query({ ...target, version: "%%%" }))).toBe("BAD_REQUEST");
    expect(await trpcCode(client.$crdt.pull.query({ ...target, version: b64(new Uint8Array([255, 255, 255])) }))).toBe("BAD_REQUEST");
    // A row that does not exist: NOT_FOUND, and no orphan document is left behind.
    expect(await push(b64(valid.export({ mode: "update" })), { id: "missing" })).toBe("NOT_FOUND");
    expect(await trpcCode(client.$crdt.pull.query({ ...target, id: "missing" }))).toBe("NOT_FOUND");

    expect(await store.db.note.findUnique({ where: { id: "n1" } })).toEqual(rowBefore);
    expect(await sidecar()).toEqual(sidecarBefore);
    expect(await store.sql.query(`SELECT count(*)::int AS n FROM "_tether_changes"`)).toEqual(changesBefore);

    // The server's document still works after the rejected ones (nothing half-imported lingers).
    const after = new LoroDoc();
    after.import(unb64((await client.$crdt.pull.query(target)).update));
    after.getText("body").insert(4, "!");
    after.commit();
    await client.$crdt.push.mutate({ ...target, update: b64(after.export({ mode: "update" })) });
    await waitFor("the projection into the column", async () => (await column()) === "kept!");
  });

  it("keeps the document and the column consistent with ordinary mutations and raw SQL writes", async () => {
    await start();
    const client = connect(server, "alice", cleanups);
    const peer = new Peer(client, "n1");
    peer.open();
    const fatal = () => peer.errors[0];
    peer.doc.getText("body").insert(0, "typed in the editor");
    peer.doc.commit();
    await peer.push();

    // An ordinary mutation writes the column: the document follows, and streams the edit.
    await client.notes.setBody.mutate({ id: "n1", body: "typed in the form" });
    await waitFor("the mutation's value in the document", () => peer.text === "typed in the form", { fatal });

    // A raw SQL write (outside Tether) is reconciled the same way.
    await store.sql.query(`UPDATE "Note" SET body = 'written by SQL' WHERE id = 'n1'`);
    await waitFor("the SQL value in the document", () => peer.text === "written by SQL", { fatal });

    // A client edit after that merges with it; the column is the merged text.
    peer.doc.getText("body").insert(0, ">> ");
    peer.doc.commit();
    await peer.push();
    await waitFor("the projection into the column", async () => (await column()) === ">> written by SQL");
    expect(peer.text).toBe(">> written by SQL");

    // A note created with a body starts its document from it.
    await store.db.note.create({ data: { id: "n2", projectId: (await store.db.project.create({ data: { name: "Two", ownerId: "alice" } })).id, body: "seeded" } });
    const pulled = new LoroDoc();
    pulled.import(unb64((await client.$crdt.pull.query({ model: "Note", id: "n2", field: "body" })).update));
    expect(pulled.getText("body").toString()).toBe("seeded");
  });

  it("applies the read and update policies; a revoked reader's stream ends NOT_FOUND", async () => {
    await start();
    const target = { model: "Note", id: "n1", field: "body" };
    const update = (text: string) => {
      const doc = new LoroDoc();
      doc.getText("body").insert(0, text);
      doc.commit();
      return b64(doc.export({ mode: "update" }));
    };
    const dave = connect(server, "dave", cleanups);
    expect(await trpcCode(dave.$crdt.pull.query(target))).toBe("NOT_FOUND");
    expect(await trpcCode(dave.$crdt.push.mutate({ ...target, update: update("intruder") }))).toBe("NOT_FOUND");
    const daveStream = new Peer(dave, "n1");
    daveStream.open();
    await waitFor("dave's stream to be refused", () => daveStream.errors.length > 0);
    expect((daveStream.errors[0] as TRPCClientError<CrdtRouter>).data?.code).toBe("NOT_FOUND");
    expect(daveStream.messages).toBe(0);

    // Carol may read, not write: FORBIDDEN, and nothing stored.
    const carol = connect(server, "carol", cleanups);
    expect(await trpcCode(carol.$crdt.pull.query(target))).toBe("OK");
    expect(await trpcCode(carol.$crdt.push.mutate({ ...target, update: update("carol was here") }))).toBe("FORBIDDEN");
    expect(await column()).toBe("");
    expect((await sidecar()).updates).toHaveLength(0);

    // Bob reads and writes as a member; when his membership goes his stream ends (at once: see
    // test/revocation.test.ts) and he can neither pull nor stream again. (An edit relayed in the
    // moments between the revocation's commit and this node's feed reading it may still reach
    // him: docs/crdt.md, "Access and the feed's lag". So alice edits after his stream ended.)
    const bobClient = connect(server, "bob", cleanups);
    const bob = new Peer(bobClient, "n1");
    bob.open();
    const alice = new Peer(connect(server, "alice", cleanups), "n1");
    alice.open();
    await waitFor("both streams open", () => bob.messages > 0 && alice.messages > 0);
    bob.doc.getText("body").insert(0, "bob ");
    bob.doc.commit();
    await bob.push();
    await waitFor("alice sees bob's edit", () => alice.text === "bob ");
    await store.db.projectMember.deleteMany({ where: { userId: "bob" } });
    await waitFor("bob's stream to end", () => bob.errors.length > 0);
    expect((bob.errors[0] as TRPCClientError<CrdtRouter>).data?.code).toBe("NOT_FOUND");
    alice.doc.getText("body").insert(4, "and alice");
    alice.doc.commit();
    await alice.push();
    expect(await trpcCode(bobClient.$crdt.pull.query(target))).toBe("NOT_FOUND");
    const bobAgain = new Peer(bobClient, "n1");
    bobAgain.open();
    await waitFor("bob's new stream to be refused", () => bobAgain.errors.length > 0);
    expect((bobAgain.errors[0] as TRPCClientError<CrdtRouter>).data?.code).toBe("NOT_FOUND");
    expect(bobAgain.messages).toBe(0);
    expect(bob.text).toBe("bob ");
  });

  it("deleting the row deletes its document and ends its streams with NOT_FOUND (cascades too)", async () => {
    await start();
    const client = connect(server, "alice", cleanups);
    const peer = new Peer(client, "n1");
    peer.open();
    peer.doc.getText("body").insert(0, "doomed");
    peer.doc.commit();
    await peer.push();
    expect((await sidecar()).docs).toHaveLength(1);
    // Deleting the project cascades to the note in the database (no Prisma call for the note).
    await store.db.project.delete({ where: { id: "p1" } });
    await waitFor("the stream to end", () => peer.errors.length > 0);
    expect((peer.errors[0] as TRPCClientError<CrdtRouter>).data?.code).toBe("NOT_FOUND");
    expect(await sidecar()).toEqual({ docs: [], updates: [] });
  });

  it("a node that hears of updates only after they were compacted away reloads the document ONCE", async () => {
    // Node A (the watcher's): its feed held back, as a slow or partitioned node's would be, and
    // no relay. Node B (the writer's): a second Tether on the same database.
    const real = await createChangeFeed({ sql: store.sql });
    let release: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();
    const held: ChangeFeed = {
      subscribe: (listener, options) =>
        real.subscribe(async (event) => {
          await gate;
          return listener(event);
        }, options),
      currentPosition: () => real.currentPosition(),
      trim: (retention) => real.trim(retention),
      stats: () => real.stats(),
      close: () => real.close(),
    };
    cleanups.push(() => real.close());
    await start({ compactEveryUpdates: 3, relay: false }, held);
    const nodeB = buildCrdtApp(store, { compactEveryUpdates: 3, relay: false });
    const serverB = await serve(nodeB.router);
    cleanups.push(() => nodeB.tether.close(), () => serverB.close());
    const writer = new Peer(connect(serverB, "alice", cleanups), "n1");
    const watcher = new Peer(connect(server, "bob", cleanups), "n1");
    watcher.open();
    await waitFor("the watcher's first message", () => watcher.messages > 0, { fatal: () => watcher.errors[0] });
    gate = new Promise((resolve) => (release = resolve));
    for (let i = 0; i < 8; i++) {
      writer.doc.getText("body").insert(writer.text.length, `${i};`);
      writer.doc.commit();
      await writer.push();
    }
    expect(watcher.text).toBe(""); // nothing delivered while held
    expect(nodeB.tether.stats.crdt().compactions).toBeGreaterThanOrEqual(2);
    release();
    const expected = Array.from({ length: 8 }, (_, i) => `${i};`).join("");
    await waitFor("the watcher to catch up", () => watcher.text === expected, { fatal: () => watcher.errors[0] });
    // Eight queued updates, most compacted away: one reload covered them all.
    expect(app.tether.stats.crdt().reloads).toBe(1);
  });

  it("compacts the update log into the snapshot; late readers and streams still get everything", async () => {
    await start({ compactEveryUpdates: 5 });
    const client = connect(server, "alice", cleanups);
    const writer = new Peer(client, "n1");
    const watcher = new Peer(connect(server, "bob", cleanups), "n1");
    watcher.open();
    for (let i = 0; i < 17; i++) {
      writer.doc.getText("body").insert(writer.text.length, `${i},`);
      writer.doc.commit();
      await writer.push();
    }
    const expected = Array.from({ length: 17 }, (_, i) => `${i},`).join("");
    const { updates } = await sidecar();
    expect(updates.length).toBeLessThanOrEqual(5);
    expect(app.tether.stats.crdt().compactions).toBeGreaterThanOrEqual(3);
    await waitFor("the watcher to follow", () => watcher.text === expected, { fatal: () => watcher.errors[0] });
    const late = new LoroDoc();
    late.import(unb64((await client.$crdt.pull.query({ model: "Note", id: "n1", field: "body" })).update));
    expect(late.getText("body").toString()).toBe(expected);
    await waitFor("the projection into the column", async () => (await column()) === expected);
    // The same numbers for Prometheus.
    const text = await createMetrics({ crdt: () => app.tether.stats.crdt() }).render();
    expect(text).toMatch(/^tether_crdt_pushes_total 17$/m);
    expect(text).toMatch(/^tether_crdt_streamed_docs 1$/m);
    expect(text).toMatch(/^tether_crdt_stream_subscribers 1$/m);
    expect(Number(/^tether_crdt_compactions_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(3);
  });
});

// Two nodes on one database: each has its own store, change feed, Tether and server.
describe.runIf(engines.includes("postgres"))("CRDT documents across two nodes (Postgres)", () => {
  it("an edit on node A streams to a client on node B and back; compaction and deletion reach the other node", async () => {
    const { stores, apps, servers, close } = await startTwoNodes({ compactEveryUpdates: 4 });
    const cleanups: Array<() => unknown> = [];
    const db = stores[0]!.db;
    try {
      const onA = new Peer(connect(servers[0]!, "alice", cleanups), "n1");
      const onB = new Peer(connect(servers[1]!, "bob", cleanups), "n1");
      onA.open();
      onB.open();
      const fatal = () => onA.errors[0] ?? onB.errors[0];
      await waitFor("both streams open", () => onA.messages > 0 && onB.messages > 0, { fatal });

      // Pushed on A (compacting every 4 updates there), streamed by B's own feed and hub.
      for (let i = 0; i < 10; i++) {
        onA.doc.getText("body").insert(onA.text.length, `a${i} `);
        onA.doc.commit();
        await onA.push();
      }
      const fromA = Array.from({ length: 10 }, (_, i) => `a${i} `).join("");
      await waitFor("B to receive A's edits", () => onB.text === fromA, { fatal });
      expect(apps[0]!.tether.stats.crdt().compactions).toBeGreaterThanOrEqual(2);

      // And the other way, with A's copy merging.
      onB.doc.getText("body").insert(0, "[b] ");
      onB.doc.commit();
      await onB.push();
      await waitFor("A to receive B's edit", () => onA.text === `[b] ${fromA}`, { fatal });
      await waitFor("the projection into the column", async () => (await db.note.findUnique({ where: { id: "n1" } }))?.body === `[b] ${fromA}`);

      // An ordinary write through node B's Tether reaches A's stream as a document edit.
      await connect(servers[1]!, "bob", cleanups).notes.setBody.mutate({ id: "n1", body: "replaced on B" });
      await waitFor("A to see the mutation", () => onA.text === "replaced on B", { fatal });

      // Deleting the row on B ends A's stream.
      await stores[1]!.db.note.delete({ where: { id: "n1" } });
      await waitFor("A's stream to end", () => onA.errors.length > 0);
      expect((onA.errors[0] as TRPCClientError<CrdtRouter>).data?.code).toBe("NOT_FOUND");
    } finally {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      await close();
    }
  });
});
