// @vitest-environment happy-dom
// @vitest-environment-options {"settings":{"fetch":{"disableSameOriginPolicy":true}}}
//
// Collaborative fields on the client (useCrdtDoc / CrdtDocSession) against a real Tether server
// ($crdt.stream / $crdt.push over WebSocket + HTTP batch) on PGlite, with the `Note.body`
// field marked `/// @crdt(text)`. IndexedDB is fake-indexeddb (happy-dom has none).
import "fake-indexeddb/auto";
import { useEffect } from "react";
import { act, cleanup, configure, screen, waitFor } from "@testing-library/react";
import type { LoroDoc } from "loro-crdt";
import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TetherClient } from "@tether/client";
import {
  crdtSessionsOf,
  indexedDbCrdtPersistence,
  memoryCrdtPersistence,
  type CrdtDocSession,
  type CrdtPersistence,
  type CrdtSessionRegistry,
} from "@tether/client/crdt";
import type { TestRouter } from "../fixtures/app.ts";
import { createTestStore, type AppStore } from "../support/databases.ts";
import { random } from "../support/random.ts";
import { waitFor as waitForCondition } from "../support/waitFor.ts";
import { clientFor, renderWith, startServer, tether, type RunningServer } from "./support.tsx";

const { useCrdtDoc } = tether;

// Changes cross a real server, its transaction and its fan-out: give waitFor room on a busy machine.
configure({ asyncUtilTimeout: 10_000 });

let store: AppStore;
let closeStore: () => Promise<void>;
let running: RunningServer;
let noteSeq = 0;
const teardown: Array<() => unknown> = [];

beforeAll(async () => {
  const made = await createTestStore("pglite");
  store = made.store;
  closeStore = made.close;
  await store.db.user.create({ data: { id: "alice", email: "alice@x", name: "Alice" } });
  running = await startServer(store);
});

afterEach(async () => {
  cleanup();
  for (const step of teardown.splice(0).reverse()) await step();
});

afterAll(async () => {
  await running?.stop();
  await closeStore?.();
});

/** A project with an empty note; returns the note's id. */
async function newNote(body = ""): Promise<string> {
  const id = `crdt${++noteSeq}`;
  await store.db.project.create({ data: { id, name: id, ownerId: "alice" } });
  const note = await store.db.note.create({ data: { projectId: id, body } });
  return note.id;
}

async function projectedBody(noteId: string): Promise<string | undefined> {
  return (await store.db.note.findUnique({ where: { id: noteId } }))?.body;
}

/**
 * A client's network that the test can cut: open sockets are dropped, new ones are refused
 * (sent to a closed port) and HTTP requests fail, until `restore()`.
 */
class Network {
  down = false;
  private readonly sockets = new Set<WebSocket>();

  readonly WebSocket: typeof WebSocket;
  readonly fetch: typeof fetch;

  constructor() {
    const network = this;
    this.WebSocket = class CuttableWebSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(network.down ? "ws://127.0.0.1:1" : url, protocols);
        network.sockets.add(this);
        this.on("close", () => network.sockets.delete(this));
      }
    } as typeof WebSocket;
    this.fetch = ((input: RequestInfo | URL, init?: RequestInit) =>
      network.down ? Promise.reject(new TypeError("fetch failed (network cut by the test)")) : globalThis.fetch(input, init)) as typeof fetch;
  }

  cut(): void {
    this.down = true;
    for (const socket of this.sockets) socket.terminate();
  }

  restore(): void {
    this.down = false;
  }
}

interface Peer {
  tether: TetherClient<TestRouter>;
  sessions: CrdtSessionRegistry;
  network: Network;
}

/** A Tether client with a cuttable network and fast retries; CRDT sessions persisted in `persistence`. */
function peer(persistence: CrdtPersistence | null = memoryCrdtPersistence()): Peer {
  const network = new Network();
  const client = clientFor(running.server, {
    WebSocket: network.WebSocket,
    fetch: network.fetch,
    crdt: { persistence, retry: { initialDelayMs: 20, maxDelayMs: 200 }, saveDelayMs: 10 },
  });
  const sessions = crdtSessionsOf(client);
  // Sessions first (their copies are written), then the client.
  teardown.push(async () => {
    await sessions.close();
    await client.close();
  });
  return { tether: client, sessions, network };
}

const until = (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> =>
  waitForCondition(what, check, { timeoutMs });

const bodyOf = (session: CrdtDocSession) => session.state.doc?.getText("body").toString();


/** One random edit: mostly inserts (so the text grows), sometimes a deletion of a short range. */
function edit(doc: LoroDoc, rnd: () => number, tag: string): void {
  const text = doc.getText("body");
  const length = text.length;
  if (length > 4 && rnd() < 0.35) {
    const at = Math.floor(rnd() * (length - 1));
    text.delete(at, Math.min(1 + Math.floor(rnd() * 3), length - at));
  } else {
    text.insert(Math.floor(rnd() * (length + 1)), tag);
  }
  doc.commit();
}

/** Shows a note body with the hook; hands the document to the test for editing. */
function NoteEditor({ id, name, onDoc }: { id: string; name: string; onDoc: (doc: LoroDoc) => void }) {
  const note = useCrdtDoc({ model: "Note", id, field: "body" });
  useEffect(() => {
    if (note.doc) onDoc(note.doc);
  }, [note.doc, onDoc]);
  return (
    <p data-testid={name} data-status={note.status} data-pending={note.pending}>
      {note.text ?? ""}
    </p>
  );
}

const shown = (name: string) => screen.getByTestId(name).textContent;
const statusOf = (name: string) => screen.getByTestId(name).dataset.status;

describe("useCrdtDoc against a real server", () => {
  it("three clients editing one note concurrently, one offline for part of the run, converge (and so does Note.body)", async () => {
    const noteId = await newNote("shared:");
    const names = ["a", "b", "c"] as const;
    const peers = { a: peer(), b: peer(), c: peer() };
    const docs: Partial<Record<(typeof names)[number], LoroDoc>> = {};
    for (const name of names) {
      renderWith(peers[name].tether, <NoteEditor id={noteId} name={name} onDoc={(doc) => (docs[name] = doc)} />);
    }
    await waitFor(() => {
      for (const name of names) {
        expect(statusOf(name)).toBe("synced");
        expect(shown(name)).toBe("shared:");
      }
    });

    const rnd = random(6);
    let cOfflineOps = 0;
    const rounds = 36;
    for (let round = 0; round < rounds; round += 1) {
      if (round === 8) {
        peers.c.network.cut();
        await waitFor(() => expect(statusOf("c")).toBe("offline"));
      }
      if (round === 24) {
        // c edited offline meanwhile; it must still be offline (nothing could have gone out).
        expect(statusOf("c")).toBe("offline");
        expect(Number(screen.getByTestId("c").dataset.pending)).toBeGreaterThan(0);
        cOfflineOps = docs.c!.oplogVersion().get(docs.c!.peerIdStr) ?? 0;
        peers.c.network.restore();
      }
      // Every client edits in every round without waiting for the others: concurrent edits.
      await act(async () => {
        for (const name of names) edit(docs[name]!, rnd, `${name}${round}.`);
        // Let some of the traffic through between rounds, not all of it.
        await new Promise((resolve) => setTimeout(resolve, Math.floor(rnd() * 15)));
      });
    }

    await waitFor(() => {
      for (const name of names) expect(statusOf(name)).toBe("synced");
      expect(shown("b")).toBe(shown("a"));
      expect(shown("c")).toBe(shown("a"));
    });
    const final = shown("a")!;
    for (const name of names) expect(docs[name]!.getText("body").toString()).toBe(final);
    // Same history everywhere (not just the same text): every client holds every other's
    // operations, c's offline ones included.
    const history = (doc: LoroDoc) => [...doc.oplogVersion().toJSON().entries()].sort();
    expect(history(docs.b!)).toEqual(history(docs.a!));
    expect(history(docs.c!)).toEqual(history(docs.a!));
    expect(docs.a!.oplogVersion().get(docs.c!.peerIdStr)).toBeGreaterThanOrEqual(cOfflineOps);
    expect(cOfflineOps).toBeGreaterThan(0);
    // The server projected the same text into the ordinary column, in the push's transaction.
    await until(async () => (await projectedBody(noteId)) === final, "Note.body to equal the merged text");
  });

  it("an offline edit kept in IndexedDB survives a reload and is merged after reconnecting", async () => {
    const noteId = await newNote("start");
    const dbName = `tether-crdt-test-${noteId}`;
    const target = { model: "Note", id: noteId, field: "body" };

    // First page: loads, syncs, goes offline, edits, and is closed (the tab reloads).
    const first = peer(indexedDbCrdtPersistence({ dbName }));
    const handle = first.sessions.acquire(target);
    const before = handle.session;
    await until(() => before.state.status === "synced", "first session to sync");
    first.network.cut();
    await until(() => before.state.status === "offline", "first session to notice the cut");
    const doc = before.state.doc!;
    doc.getText("body").insert(0, "draft ");
    doc.commit();
    expect(before.state.pending).toBeGreaterThan(0);
    // Closing the client (the tab going away) ends its sessions, each writing its copy first.
    await first.tether.close();
    expect(before.isDisposed).toBe(true);
    handle.release();

    // Meanwhile someone else edits the same note online.
    const other = peer(null);
    const otherHandle = other.sessions.acquire(target);
    await until(() => otherHandle.session.state.status === "synced", "other session to sync");
    const otherDoc = otherHandle.session.state.doc!;
    otherDoc.getText("body").insert(otherDoc.getText("body").length, " + remote");
    otherDoc.commit();
    await until(() => otherHandle.session.state.status === "synced", "other edit acknowledged");
    await until(async () => (await projectedBody(noteId)) === "start + remote", "Note.body projected", 60_000);

    // The reloaded page: a new client, a new session, the same IndexedDB.
    const second = peer(indexedDbCrdtPersistence({ dbName }));
    const reloaded = second.sessions.acquire(target).session;
    await reloaded.ready();
    // The draft is there from IndexedDB before the server said anything.
    expect(bodyOf(reloaded)).toContain("draft ");
    expect(reloaded.stats.lastStreamVersion).toBeDefined();
    await until(() => reloaded.state.status === "synced", "reloaded session to sync");
    expect(bodyOf(reloaded)).toBe("draft start + remote");
    expect(reloaded.state.pending).toBe(0);
    await until(() => bodyOf(otherHandle.session) === "draft start + remote", "the other client to get the draft");
    await until(async () => (await projectedBody(noteId)) === "draft start + remote", "Note.body projected", 60_000);
    otherHandle.release();
  });

  it("initial sync sends only what the client lacks", async () => {
    const noteId = await newNote();
    const target = { model: "Note", id: noteId, field: "body" };
    const persistence = memoryCrdtPersistence();

    const writer = peer(null);
    const writing = writer.sessions.acquire(target);
    await until(() => writing.session.state.status === "synced", "writer to sync");
    const doc = writing.session.state.doc!;
    for (let i = 0; i < 40; i += 1) {
      doc.getText("body").insert(doc.getText("body").length, `line ${i}: ${"lorem ipsum ".repeat(8)}\n`);
      doc.commit();
    }
    await until(() => writing.session.state.status === "synced", "writer's pushes acknowledged");
    const fullSize = doc.export({ mode: "update" }).length;
    expect(fullSize).toBeGreaterThan(3000);

    // A client with nothing gets the whole document...
    const reader = peer(persistence);
    const first = reader.sessions.acquire(target);
    await until(() => first.session.state.status === "synced", "reader to sync");
    expect(bodyOf(first.session)).toBe(doc.getText("body").toString());
    expect(first.session.stats.lastStreamVersion).toBeUndefined();
    expect(first.session.stats.catchUpBytes).toBeGreaterThan(fullSize / 2);
    first.release();
    await reader.sessions.close();

    // ...and one that kept its copy (up to date) gets a near-empty catch-up...
    const again = peer(persistence);
    const second = again.sessions.acquire(target);
    await until(() => second.session.state.status === "synced", "returning reader to sync");
    expect(bodyOf(second.session)).toBe(doc.getText("body").toString());
    expect(second.session.stats.lastStreamVersion).toBeDefined();
    expect(second.session.stats.catchUpBytes).toBeLessThan(100);
    expect(second.session.stats.catchUpBytes! * 30).toBeLessThan(fullSize);

    // ...and then just the changes that follow.
    doc.getText("body").insert(0, "new first line\n");
    doc.commit();
    await until(() => bodyOf(second.session) === doc.getText("body").toString(), "the new line to reach the reader");
    second.release();
    writing.release();
  });

  it("streams over SSE as well as WebSocket", async () => {
    const noteId = await newNote("x");
    const target = { model: "Note", id: noteId, field: "body" };
    const sseClient = clientFor(running.server, { sse: true, crdt: { persistence: null } });
    const overSse = crdtSessionsOf(sseClient);
    teardown.push(async () => {
      await overSse.close();
      await sseClient.close();
    });
    const viaWs = peer(null).sessions.acquire(target).session;
    const viaSse = overSse.acquire(target).session;
    await until(() => viaWs.state.status === "synced" && viaSse.state.status === "synced", "both to sync");
    viaSse.state.doc!.getText("body").insert(1, "-sse");
    viaSse.state.doc!.commit();
    viaWs.state.doc!.getText("body").insert(0, "ws-");
    viaWs.state.doc!.commit();
    await until(() => bodyOf(viaWs) === "ws-x-sse" && bodyOf(viaSse) === "ws-x-sse", "both edits on both sides");
    await until(async () => (await projectedBody(noteId)) === "ws-x-sse", "Note.body");
  });

  it("reports NOT_FOUND for a row that does not exist", async () => {
    const client = peer(null);
    const handle = client.sessions.acquire({ model: "Note", id: "no-such-note", field: "body" });
    await until(() => handle.session.state.status === "error", "the session to fail");
    expect((handle.session.state.error as { data?: { code?: string } }).data?.code).toBe("NOT_FOUND");
    handle.release();
  });
});
