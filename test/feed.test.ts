import { spawn } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import { positionIncludes } from "@tether/protocol";
import type { ChangeFeed } from "@tether/server";
import { createChangeFeed, LISTENER_APPLICATION_NAME } from "@tether/server/internal";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { recordFeed } from "./support/feedRecorder.ts";
import { waitFor } from "./support/waitFor.ts";

describe.each(engines)("change feed on %s", (engine) => {
  let store: AppStore;
  let feed: ChangeFeed;
  let close: () => Promise<void>;

  beforeEach(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    close = made.close;
    feed = await createChangeFeed({ sql: store.sql, pollIntervalMs: 0, trimIntervalMs: 0 });
  });
  afterEach(async () => {
    await feed.close();
    await close();
  });

  async function seedUser(id = "u1") {
    return store.db.user.create({ data: { id, email: `${id}@example.com`, name: id } });
  }

  it("delivers a write made through Prisma, with key and new row", async () => {
    const rec = await recordFeed(feed);
    await seedUser("u1");
    await rec.until(() => rec.changes().length === 1);
    const [change] = rec.changes();
    expect(change).toMatchObject({ table: "User", op: "INSERT", pk: { id: "u1" }, old: null });
    expect(change?.new).toMatchObject({ id: "u1", email: "u1@example.com", name: "u1" });
  });

  it("delivers writes made with raw SQL, updates with old and new, deletes, truncates", async () => {
    const rec = await recordFeed(feed);
    await store.sql.query(`INSERT INTO "User" (id, email, name) VALUES ('r1', 'r1@x', 'R')`);
    await store.sql.query(`UPDATE "User" SET name = 'R2' WHERE id = 'r1'`);
    await store.sql.query(`DELETE FROM "User" WHERE id = 'r1'`);
    await store.sql.query(`TRUNCATE "Attachment"`);
    await rec.until(() => rec.changes().length === 4);
    const [ins, upd, del, trunc] = rec.changes();
    expect(ins).toMatchObject({ op: "INSERT", new: { name: "R" } });
    expect(upd).toMatchObject({ op: "UPDATE", old: { name: "R" }, new: { name: "R2" } });
    expect(del).toMatchObject({ op: "DELETE", old: { name: "R2" }, new: null, pk: { id: "r1" } });
    expect(trunc).toMatchObject({ op: "TRUNCATE", table: "Attachment" });
  });

  it("leaves bytea columns and oversized values out of the logged rows", async () => {
    const user = await seedUser();
    const project = await store.db.project.create({ data: { name: "P", ownerId: user.id } });
    const rec = await recordFeed(feed);
    const task = await store.db.task.create({ data: { projectId: project.id, title: "x".repeat(100_000) } });
    await store.db.attachment.create({ data: { taskId: task.id, name: "a.bin", data: Buffer.alloc(1000, 7) } });
    await rec.until(() => rec.changes().length === 2);
    const [taskChange, attachmentChange] = rec.changes();
    expect(taskChange?.new).not.toHaveProperty("title");
    expect(taskChange?.new).toMatchObject({ id: task.id, projectId: project.id });
    expect(taskChange?.omitted).toEqual(["title"]);
    expect(attachmentChange?.new).toMatchObject({ name: "a.bin" });
    expect(attachmentChange?.new).not.toHaveProperty("data");
    expect(attachmentChange?.omitted).toEqual(["data"]);
  });

  it("delivers nothing for a rolled-back transaction", async () => {
    const rec = await recordFeed(feed);
    await expect(
      store.db.$transaction(async (tx) => {
        await tx.user.create({ data: { id: "ghost", email: "g@x", name: "G" } });
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    await seedUser("after");
    await rec.until(() => rec.changes().length >= 1);
    await rec.subscription.caughtUp();
    expect(rec.changes().map((c) => c.pk)).toEqual([{ id: "after" }]);
    const [{ n }] = (await store.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM "_tether_changes" WHERE pk->>'id' = 'ghost'`)) as [{ n: string }];
    expect(n).toBe("0");
  });

  it("groups a transaction's changes into one event and reports positions that include it", async () => {
    const rec = await recordFeed(feed);
    await store.db.$transaction(async (tx) => {
      await tx.user.create({ data: { id: "a", email: "a@x", name: "A" } });
      await tx.user.create({ data: { id: "b", email: "b@x", name: "B" } });
    });
    await rec.until(() => rec.transactions().length === 1);
    const [event] = rec.transactions();
    expect(event?.changes.map((c) => c.pk)).toEqual([{ id: "a" }, { id: "b" }]);
    expect(positionIncludes(event!.position, event!.xid)).toBe(true);
    expect(positionIncludes(rec.subscription.position(), event!.xid)).toBe(true);
  });

  it("resumes from a position: each transaction exactly once across a restart", async () => {
    const first = await recordFeed(feed);
    for (let i = 0; i < 5; i++) await seedUser(`a${i}`);
    await first.until(() => first.changes().length === 5);
    const resumeAt = first.subscription.position();
    first.subscription.close();
    for (let i = 0; i < 5; i++) await seedUser(`b${i}`);
    const second = await recordFeed(feed, resumeAt);
    await second.until(() => second.changes().length >= 5);
    await second.subscription.caughtUp();
    expect(second.changes().map((c) => c.pk?.id)).toEqual(["b0", "b1", "b2", "b3", "b4"]);
  });

  it("sends resync to a subscriber whose position was trimmed, and not to one that kept up", async () => {
    const live = await recordFeed(feed);
    const old = await feed.currentPosition();
    for (let i = 0; i < 3; i++) await seedUser(`t${i}`);
    await live.until(() => live.changes().length === 3);
    // Trim never passes a local reader's horizon, and both follow the cluster-wide xmin, which a
    // transaction in another database (a parallel test file) can hold back for a moment: let the
    // reader catch up, and retry until the horizon has moved past the three transactions (it may
    // pass some of them first: a held xmin can stop a trim between them, so count every trim's).
    let deleted = 0;
    await waitFor(
      "the trim horizon to pass the three transactions",
      async () => {
        await live.subscription.caughtUp();
        deleted += (await feed.trim({ maxAgeMs: 0, maxRows: 0 })).deleted;
        return deleted >= 3;
      },
      { timeoutMs: 10_000 },
    );
    expect(deleted).toBe(3);
    const lagging = await recordFeed(feed, old);
    await lagging.until(() => lagging.events.length >= 1);
    expect(lagging.events[0]).toMatchObject({ type: "resync" });
    await seedUser("next");
    await lagging.until(() => lagging.changes().length === 1);
    await live.until(() => live.changes().length === 4);
    expect(live.events.some((e) => e.type === "resync")).toBe(false);
    expect(feed.stats().resyncs).toBe(1);
  });

  it("rejects a malformed resume position with a clear error", async () => {
    await expect(feed.subscribe(() => undefined, { after: "yesterday" })).rejects.toThrow(/invalid change-feed position/);
  });

  it("delivers every one of many concurrent transactions exactly once", async () => {
    const rec = await recordFeed(feed);
    const writers = 8;
    const perWriter = 15;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          if (i % 2 === 0) await store.db.user.create({ data: { id: `w${w}-${i}`, email: `w${w}-${i}@x`, name: "W" } });
          else await store.sql.query(`INSERT INTO "User" (id, email, name) VALUES ($1, $2, 'W')`, [`w${w}-${i}`, `w${w}-${i}@x`]);
        }
      }),
    );
    await rec.until(() => rec.changes().length >= writers * perWriter, 15_000);
    await rec.subscription.caughtUp();
    const ids = rec.changes().map((c) => c.pk?.id);
    expect(ids.length).toBe(writers * perWriter);
    expect(new Set(ids).size).toBe(writers * perWriter);
    const xids = rec.transactions().map((t) => t.xid);
    expect(new Set(xids).size).toBe(xids.length);
  });

  if (engine === "postgres") {
    it("delivers two transactions that commit in the opposite order of their sequence numbers, in commit order", async () => {
      const rec = await recordFeed(feed);
      const url = (store.location as string).replace("***", "");
      const t1 = new pg.Client({ connectionString: url });
      const t2 = new pg.Client({ connectionString: url });
      await Promise.all([t1.connect(), t2.connect()]);
      try {
        await t1.query("BEGIN");
        await t1.query(`INSERT INTO "User" (id, email, name) VALUES ('first-seq', 'f@x', 'F')`);
        await t2.query("BEGIN");
        await t2.query(`INSERT INTO "User" (id, email, name) VALUES ('second-seq', 's@x', 'S')`);
        await t2.query("COMMIT");
        await rec.until(() => rec.changes().length === 1);
        // T1 is still open: a seq cursor would now be past T1's seq and lose it forever.
        await t1.query("COMMIT");
        await rec.until(() => rec.changes().length === 2);
      } finally {
        await Promise.all([t1.end(), t2.end()]);
      }
      const [a, b] = rec.changes();
      expect(a?.pk).toEqual({ id: "second-seq" });
      expect(b?.pk).toEqual({ id: "first-seq" });
      expect(BigInt(a!.seq)).toBeGreaterThan(BigInt(b!.seq));
    });

    it("delivers a write made by another process", async () => {
      const rec = await recordFeed(feed);
      const url = (store.location as string).replace("***", "");
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/writeUser.ts", url, "from-child"], { stdio: "inherit" });
        child.on("error", reject);
        child.on("exit", resolve);
      });
      expect(code).toBe(0);
      await rec.until(() => rec.changes().length === 1, 10_000);
      expect(rec.changes()[0]?.pk).toEqual({ id: "from-child" });
    });

    it("reconnects a killed listener connection and catches up what was written meanwhile", async () => {
      const rec = await recordFeed(feed);
      await seedUser("before");
      await rec.until(() => rec.changes().length === 1);
      const killed = await store.sql.query<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
        [LISTENER_APPLICATION_NAME],
      );
      expect(killed).toEqual([{ ok: true }]);
      for (let i = 0; i < 5; i++) await seedUser(`during${i}`);
      await rec.until(() => rec.changes().length === 6, 10_000);
      expect(feed.stats().listenerReconnects).toBeGreaterThanOrEqual(1);
      await seedUser("after");
      await rec.until(() => rec.changes().length === 7, 10_000);
      expect(new Set(rec.changes().map((c) => c.pk?.id)).size).toBe(7);
    });

    it("delivers a transaction to feeds on two nodes", async () => {
      const nodeB = await createChangeFeed({ sql: store.sql, pollIntervalMs: 0, trimIntervalMs: 0 });
      try {
        const a = await recordFeed(feed);
        const b = await recordFeed(nodeB);
        await seedUser("both");
        await Promise.all([a.until(() => a.changes().length === 1), b.until(() => b.changes().length === 1)]);
        // The same transaction (its xid and changes). Positions are each reader's own resume
        // points: they also hold the transactions in flight cluster-wide when it read (other tests'
        // databases share Postgres's xids), so two readers may encode the same commit differently.
        expect(a.transactions()[0]?.xid).toBe(b.transactions()[0]?.xid);
        expect(a.changes()).toEqual(b.changes());
      } finally {
        await nodeB.close();
      }
    });
  }
});
