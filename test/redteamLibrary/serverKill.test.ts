// Server SIGKILL + restart while core clients (no React) hold a live query, a CRDT session and a
// presence room; then a reconnect storm of many core clients. Both engines.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createTetherClient, watchQuery, type TetherClient } from "@tether/client";
import { crdtSessionsOf } from "@tether/client/crdt";
import { presenceRegistryOf } from "@tether/client/presence";
import { createTestDatabase, engines, type TestDatabase } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";
import type { CrdtRouter } from "../support/crdtApp.ts";

// The CRDT test app in a process of its own (the same node the CRDT kill tests use).
const script = path.join(import.meta.dirname, "..", "support", "crdtNode.ts");

function startNode(config: { url?: string; dataDir?: string; port: number; seed?: boolean }) {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, CRDT_NODE: JSON.stringify(config), TETHER_LOG_LEVEL: "silent" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  return {
    child,
    ready: () => waitFor("node READY", () => out.includes("READY"), { timeoutMs: 90_000, fatal: () => (child.exitCode !== null ? `exited ${child.exitCode}: ${out}` : null) }),
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    },
    output: () => out,
  };
}

async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function client(port: number, user: string, extra: Record<string, unknown> = {}): TetherClient<CrdtRouter> {
  return createTetherClient<CrdtRouter>({
    url: `http://127.0.0.1:${port}/trpc`,
    headers: { "x-user": user },
    subscriptions: { transport: "ws", WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user } },
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    crdt: { persistence: null, retry: { initialDelayMs: 50, maxDelayMs: 500 } },
    presence: { retry: { initialDelayMs: 50, maxDelayMs: 500 } },
    ...extra,
  });
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Note = { id: string; body: string } | null;
const noteKey = (id: string) => [["notes", "get"], { input: { id }, type: "query" }];

describe.each(engines)("server SIGKILL with live query + CRDT + presence held (%s)", (engine) => {
  let database: TestDatabase;
  it("everything comes back after kill + restart", { timeout: 240_000 }, async () => {
    database = await createTestDatabase(engine);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "red16-kill-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => database.drop());
    const dbConfig = engine === "pglite" ? { dataDir: path.join(dir, "pgdata") } : { url: database.url };
    const port = await freePort();
    let node = startNode({ ...dbConfig, port, seed: true });
    cleanups.push(() => node.kill());
    await node.ready();

    // Each its own presence clientId: see presenceClientId.test.ts for what the default does.
    const alice = client(port, "alice", { presence: { clientId: "alice-tab", retry: { initialDelayMs: 50, maxDelayMs: 500 } } });
    const bob = client(port, "bob", { presence: { clientId: "bob-tab", retry: { initialDelayMs: 50, maxDelayMs: 500 } } });
    cleanups.push(() => alice.close(), () => bob.close());

    let aliceNote: Note | undefined;
    let aliceStatus = "";
    const stop = watchQuery<Note>(alice, { path: "notes.get", input: { id: "n1" }, queryKey: noteKey("n1") }, (data, status) => {
      aliceNote = data;
      aliceStatus = status;
    });
    cleanups.push(stop);
    await waitFor("alice live", () => aliceStatus === "live" && aliceNote?.id === "n1", { timeoutMs: 30_000 });

    const aDoc = crdtSessionsOf(alice).acquire({ model: "Note", id: "n1", field: "body" });
    const bDoc = crdtSessionsOf(bob).acquire({ model: "Note", id: "n1", field: "body" });
    cleanups.push(() => aDoc.release(), () => bDoc.release());
    await waitFor("sessions synced", () => aDoc.session.state.status === "synced" && bDoc.session.state.status === "synced", { timeoutMs: 30_000 });

    const aRoom = presenceRegistryOf(alice).acquire("note:n1", { who: "alice" });
    const bRoom = presenceRegistryOf(bob).acquire("note:n1", { who: "bob" });
    cleanups.push(() => aRoom.release(), () => bRoom.release());
    const sees = (r: typeof aRoom, who: string) => r.room.get().peers.some((p) => !p.self && (p.state as { who: string }).who === who);
    await waitFor("presence both", () => sees(aRoom, "bob") && sees(bRoom, "alice"), { timeoutMs: 10_000 }).catch((e) => {
      throw new Error(`${e.message}: a=${JSON.stringify(aRoom.room.get())} b=${JSON.stringify(bRoom.room.get())} ids=${aRoom.room.clientId},${bRoom.room.clientId}`);
    });

    // Kill the node hard.
    await node.kill();
    await waitFor("alice notices", () => aliceStatus !== "live", { timeoutMs: 30_000 });
    // Offline CRDT edit by alice.
    const doc = aDoc.session.state.doc!;
    doc.getText("body").insert(0, "offline-alice ");
    doc.commit();

    node = startNode({ ...dbConfig, port });
    await node.ready();

    await waitFor("alice live again", () => aliceStatus === "live", { timeoutMs: 30_000 });
    await waitFor("bob's doc has alice's offline edit", () => bDoc.session.state.doc?.getText("body").toString().includes("offline-alice") === true, { timeoutMs: 30_000 }).catch(async (e) => {
      const st = (h: typeof aDoc) => JSON.stringify({ status: h.session.state.status, pending: h.session.state.pending, error: String(h.session.state.error), text: h.session.state.doc?.getText("body").toString(), stats: h.session.stats });
      const pulled = await bob.trpc.$crdt.pull.query({ model: "Note", id: "n1", field: "body" }).catch((x: unknown) => String(x));
      throw new Error(`${e.message}: alice=${st(aDoc)} bob=${st(bDoc)} server=${JSON.stringify(pulled).slice(0, 300)} row=${JSON.stringify(aliceNote)}`);
    });
    await bob.trpc.notes.setBody.mutate({ id: "n1", body: "after-restart" });
    await waitFor("alice's live query sees bob's write after restart", () => aliceNote?.body?.includes("after-restart") === true, { timeoutMs: 30_000 });
    await waitFor("presence back", () => sees(aRoom, "bob") && sees(bRoom, "alice"), { timeoutMs: 30_000 });
  });
});

describe.each(engines)("reconnect storm (%s)", (engine) => {
  it("300 core clients holding live queries all come back after SIGKILL + restart", { timeout: 300_000 }, async () => {
    const database = await createTestDatabase(engine);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "red16-storm-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => database.drop());
    const dbConfig = engine === "pglite" ? { dataDir: path.join(dir, "pgdata") } : { url: database.url };
    const port = await freePort();
    let node = startNode({ ...dbConfig, port, seed: true });
    cleanups.push(() => node.kill());
    await node.ready();
    const N = 300;
    const states: Array<{ note: Note | undefined; status: string }> = [];
    const clients: TetherClient<CrdtRouter>[] = [];
    for (let i = 0; i < N; i++) {
      const user = i % 2 ? "alice" : "bob";
      const c = client(port, user);
      clients.push(c);
      const s = { note: undefined as Note | undefined, status: "" };
      states.push(s);
      const stop = watchQuery<Note>(c, { path: "notes.get", input: { id: "n1" }, queryKey: noteKey("n1") }, (data, status) => {
        s.note = data;
        s.status = status;
      });
      cleanups.push(stop);
    }
    cleanups.push(() => Promise.all(clients.map((c) => c.close())));
    await waitFor("all live", () => states.every((s) => s.status === "live" && s.note?.id === "n1"), { timeoutMs: 120_000 });
    await node.kill();
    await waitFor("all notice", () => states.every((s) => s.status !== "live"), { timeoutMs: 60_000 });
    node = startNode({ ...dbConfig, port });
    await node.ready();
    await clients[0]!.trpc.notes.setBody.mutate({ id: "n1", body: "storm" });
    await waitFor(
      "all see the write after the storm",
      () => states.every((s) => s.status === "live" && s.note?.body === "storm"),
      { timeoutMs: 120_000 },
    ).catch((error) => {
      const counts: Record<string, number> = {};
      for (const s of states) counts[`${s.status}/${s.note?.body}`] = (counts[`${s.status}/${s.note?.body}`] ?? 0) + 1;
      throw new Error(`${error.message}: ${JSON.stringify(counts)}`);
    });
  });
});

describe.each(engines)("SSE live query across SIGKILL + restart (%s)", (engine) => {
  it("a core client over SSE resumes its live query", { timeout: 180_000 }, async () => {
    const { EventSource } = await import("eventsource");
    const database = await createTestDatabase(engine);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "red16-sse-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => database.drop());
    const dbConfig = engine === "pglite" ? { dataDir: path.join(dir, "pgdata") } : { url: database.url };
    const port = await freePort();
    let node = startNode({ ...dbConfig, port, seed: true });
    cleanups.push(() => node.kill());
    await node.ready();
    const c = createTetherClient<CrdtRouter>({
      url: `http://127.0.0.1:${port}/trpc`,
      headers: { "x-user": "alice" },
      subscriptions: { transport: "sse", EventSource, connectionParams: { user: "alice" } },
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    cleanups.push(() => c.close());
    let note: Note | undefined;
    let status = "";
    cleanups.push(watchQuery<Note>(c, { path: "notes.get", input: { id: "n1" }, queryKey: noteKey("n1") }, (d, s) => ((note = d), (status = s))));
    await waitFor("live", () => status === "live" && note?.id === "n1", { timeoutMs: 30_000 });
    await node.kill();
    await waitFor("notices", () => status !== "live", { timeoutMs: 60_000 }).catch((e) => {
      throw new Error(`${e.message}: status stayed ${status} after the server died`);
    });
    node = startNode({ ...dbConfig, port });
    await node.ready();
    await c.trpc.notes.setBody.mutate({ id: "n1", body: "sse-after" });
    await waitFor("sees the write", () => status === "live" && note?.body === "sse-after", { timeoutMs: 60_000 }).catch((e) => {
      throw new Error(`${e.message}: status=${status} note=${JSON.stringify(note)}`);
    });
  });
});
