// A CRDT node SIGKILLed in the middle of typing, on both engines (PGlite restarted on its data
// dir): every acknowledged edit survives (an ack means durable), the projection left due is
// done at the next start, and what was not acknowledged is re-sent by its editor; every peer
// converges and the column equals the text.
import { spawn, type ChildProcess } from "node:child_process";
import { killChild, stopChild } from "./support/childProcess.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LoroDoc } from "loro-crdt";
import { afterEach, describe, expect, it } from "vitest";
import type { TetherServer } from "@tether/server/adapters/node";
import { createTestDatabase, engines } from "./support/databases.ts";
import { connect, Peer, unb64 } from "./support/crdtApp.ts";
import { waitFor } from "./support/waitFor.ts";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}

interface NodeProcess {
  ready: Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

function startNode(config: { url?: string; dataDir?: string; port: number; seed?: boolean; projectionDelayMs?: number }): NodeProcess {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "test/support/crdtNode.ts"], {
    env: { ...process.env, CRDT_NODE: JSON.stringify(config), TETHER_LOG_LEVEL: "silent" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  return {
    // Generous: a child that opens PGlite and migrates can take tens of seconds on a loaded
    // machine; this bounds failure detection, not speed.
    ready: waitFor("the node to listen", () => out.includes("READY"), {
      timeoutMs: 120_000,
      fatal: () => (child.exitCode !== null ? `node exited (${child.exitCode})` : null),
    }),
    kill: () => killChild(child),
    stop: () => stopChild(child),
  };
}

describe.each(engines)("a CRDT node SIGKILLed while editors type, on %s", (engine) => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("loses nothing acknowledged; the rest is re-sent; everyone converges and the column equals the text", { timeout: 400_000 }, async () => {
    const database = await createTestDatabase(engine);
    const dataDir = engine === "pglite" ? mkdtempSync(join(tmpdir(), "tether-crdt-kill-")) : undefined;
    cleanups.push(() => database.drop(), () => dataDir && rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const where = { url: database.url, dataDir, port };
    // The first node never projects on its own (a projection is due when it dies).
    const first = startNode({ ...where, seed: true, projectionDelayMs: 3_600_000 });
    cleanups.push(() => first.stop());
    await first.ready;
    const server = { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/trpc` } as TetherServer;
    const alice = new Peer(connect(server, "alice", cleanups), "n1");
    const bob = new Peer(connect(server, "bob", cleanups), "n1");
    alice.open();
    bob.open();
    await waitFor("both streams", () => alice.messages > 0 && bob.messages > 0, { fatal: () => alice.errors[0] ?? bob.errors[0] });
    const type = (peer: Peer, text: string) => {
      peer.doc.getText("body").insert(peer.text.length, text);
      peer.doc.commit();
    };
    for (let i = 0; i < 5; i++) {
      type(alice, `a${i} `);
      await alice.push();
      type(bob, `b${i} `);
      await bob.push();
    }
    const acked = alice.doc.export({ mode: "snapshot" });
    // Sent, and killed before (or while) it is committed: not acknowledged.
    type(alice, "UNACKED ");
    const inFlight = alice.push().then(
      () => "acked",
      () => "failed",
    );
    await first.kill();
    expect(await inFlight).toBe("failed");

    const second = startNode(where);
    cleanups.push(() => second.stop());
    await second.ready;
    const reader = connect(server, "alice", cleanups);
    // Everything acknowledged is there...
    const stored = new LoroDoc();
    stored.import(unb64((await reader.$crdt.pull.query({ model: "Note", id: "n1", field: "body" })).update));
    const ackedDoc = new LoroDoc();
    ackedDoc.import(acked);
    for (let i = 0; i < 5; i++) expect(stored.getText("body").toString()).toContain(`a${i} `);
    expect(stored.oplogVersion().compare(ackedDoc.oplogVersion())).toBeGreaterThanOrEqual(0);
    // ...and the projection the killed node left due was done by this start, from the store.
    const projected = (await reader.notes.get.query({ id: "n1" }))?.body ?? "";
    for (let i = 0; i < 5; i++) expect(projected).toContain(`b${i} `);

    // The editor re-sends what was not acknowledged; every peer converges, and the column too.
    await alice.push();
    const fatal = () => alice.errors[0] ?? bob.errors[0];
    await waitFor("bob to get the re-sent edit", () => bob.text.includes("UNACKED"), { fatal, timeoutMs: 60_000 });
    await waitFor("both to converge", () => alice.text === bob.text, { fatal });
    await waitFor("the column to equal the text", async () => (await reader.notes.get.query({ id: "n1" }))?.body === alice.text, { timeoutMs: 60_000 });
  });
});
