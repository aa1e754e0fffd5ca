import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createStore, migrate } from "@tether/server";
import { DEFAULT_DATA_DIR } from "@tether/server/internal";
import { PrismaClient } from "../generated/prisma/client.ts";
import { createTestStore, engines } from "./support/databases.ts";
import { waitFor } from "./support/waitFor.ts";

describe.each(engines)("store on %s", (engine) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it("round-trips every column type the demo uses, bytes included", async () => {
    const { store, close } = await createTestStore(engine);
    cleanups.push(close);
    expect(store.engine).toBe(engine);
    const user = await store.db.user.create({ data: { email: "a@x", name: "A" } });
    const project = await store.db.project.create({ data: { name: "P", ownerId: user.id } });
    const task = await store.db.task.create({ data: { projectId: project.id, title: "T", position: 3 } });
    const bytes = Uint8Array.from([0, 1, 2, 254, 255]);
    await store.db.attachment.create({ data: { taskId: task.id, name: "b", data: bytes } });
    const read = await store.db.task.findUniqueOrThrow({ where: { id: task.id }, include: { attachments: true, project: true } });
    expect(read.position).toBe(3);
    expect(read.done).toBe(false);
    expect(read.createdAt).toBeInstanceOf(Date);
    expect(Math.abs(read.createdAt.getTime() - Date.now())).toBeLessThan(60_000);
    expect(read.project.ownerId).toBe(user.id);
    expect([...read.attachments[0]!.data]).toEqual([...bytes]);
  });

  it("rolls back an interactive transaction that throws, rows and change log alike", async () => {
    const { store, close } = await createTestStore(engine);
    cleanups.push(close);
    await expect(
      store.db.$transaction(async (tx) => {
        await tx.user.create({ data: { id: "x", email: "x@x", name: "X" } });
        throw new Error("nope");
      }),
    ).rejects.toThrow("nope");
    expect(await store.db.user.count()).toBe(0);
    expect(await store.sql.query(`SELECT * FROM "_tether_changes"`)).toEqual([]);
  });
});

// Postgres only: PGlite has no connections to lose.
describe.runIf(engines.includes("postgres"))("store on postgres, a connection terminated under a transaction", () => {
  it("rejects that transaction, crashes nothing (no unhandled 'error' on the checked-out client), and the next call works", async () => {
    const { store, close } = await createTestStore("postgres");
    try {
      const failed = store.db.$transaction(async (tx) => {
        const [row] = await tx.$queryRaw<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
        const pid = row!.pid;
        // Its connection is checked out and idle (no statement running) when the FATAL arrives:
        // pg emits 'error' on the client then, which nobody but Tether listens to.
        await store.sql.query(`SELECT pg_terminate_backend($1)`, [pid]);
        await waitFor("the backend to be gone", async () => (await store.sql.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1`, [pid])).length === 0);
        await tx.user.create({ data: { id: "lost", email: "lost@x", name: "Lost" } });
      }, { timeout: 60_000 });
      await expect(failed).rejects.toThrow();
      expect(await store.db.user.count({ where: { id: "lost" } })).toBe(0);
      await store.db.user.create({ data: { id: "after", email: "after@x", name: "After" } });
      expect(await store.db.user.count()).toBe(1);
    } finally {
      await close();
    }
  });
});

describe("embedded default", () => {
  it("opens PGlite in a data directory when no postgres URL is given, and keeps data across reopen", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-store-"));
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const open = () => createStore({ prisma: (adapter) => new PrismaClient({ adapter }), dataDir: path.join(dir, "pg") });
      const first = await open();
      expect(first.engine).toBe("pglite");
      await migrate({ sql: first.sql, migrationsDir: "prisma/migrations" });
      await first.db.user.create({ data: { id: "kept", email: "k@x", name: "K" } });
      await first.close();
      const second = await open();
      expect((await second.db.user.findUnique({ where: { id: "kept" } }))?.name).toBe("K");
      await second.close();
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
    expect(DEFAULT_DATA_DIR).toBe(path.join(".tether", "pgdata"));
  });
});
