// tether.settled() under concurrent writes: after `await write; await tether.settled()`, a new
// subscriber's first value must include the write (the group answering from its cache must not
// hand out a result from before it), and settled() must end under a steady stream of writes.
import { afterEach, describe, expect, it } from "vitest";
import { createTestStore, engines } from "../support/databases.ts";
import { buildCrdtApp, serve, type CrdtRouter } from "../support/crdtApp.ts";
import { connectAs } from "../support/userClient.ts";
import { waitFor } from "../support/waitFor.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Msg = { kind: string; data?: { body: string } | null };

describe.each(engines)("settled() under concurrent writes (%s)", (engine) => {
  it("a subscriber arriving after settled() sees the write; settled() ends while writes continue", { timeout: 180_000 }, async () => {
    const { store, close } = await createTestStore(engine);
    cleanups.push(close);
    await store.db.user.createMany({ data: ["alice"].map((id) => ({ id, email: `${id}@x`, name: id })) });
    for (const id of ["1", "2", "3"]) {
      await store.db.project.create({ data: { id: `p${id}`, name: id, ownerId: "alice" } });
      await store.db.note.create({ data: { id: `n${id}`, projectId: `p${id}`, body: "" } });
    }
    const app = buildCrdtApp(store);
    await app.tether.start();
    cleanups.push(() => app.tether.close());
    const server = await serve(app.router);
    cleanups.push(() => server.close());
    const { trpc } = connectAs<CrdtRouter>(server, "alice", cleanups);

    // Long-lived subscribers keep groups alive (so they answer new subscribers from their cache).
    const held: Record<string, Msg[]> = { n1: [], n2: [], n3: [] };
    for (const id of Object.keys(held)) {
      const sub = trpc.$live.subscribe({ path: "notes.get", input: { id } }, { onData: ({ data }: { data: Msg }) => held[id]!.push(data) } as never);
      cleanups.push(() => sub.unsubscribe());
    }
    await waitFor("held live", () => Object.values(held).every((m) => m.length > 0), { timeoutMs: 30_000 });

    // A steady stream of writes on n2 and n3 (outside tRPC, through the store).
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await store.db.note.update({ where: { id: written % 2 ? "n2" : "n3" }, data: { body: `w${written}` } });
        written += 1;
        await new Promise((r) => setImmediate(r)); // a turn of the event loop: in-process PGlite resolves on microtasks
      }
    })();
    cleanups.push(async () => {
      writing = false;
      await writer;
    });

    const failures: string[] = [];
    const settleMs: number[] = [];
    for (let k = 0; k < 15; k++) {
      await store.db.note.update({ where: { id: "n1" }, data: { body: `v${k}` } });
      const t0 = Date.now();
      await app.tether.settled(AbortSignal.timeout(20_000));
      settleMs.push(Date.now() - t0);
      const first = await new Promise<Msg>((resolve, reject) => {
        const sub = trpc.$live.subscribe({ path: "notes.get", input: { id: "n1" } }, {
          onData: ({ data }: { data: Msg }) => {
            sub.unsubscribe();
            resolve(data);
          },
          onError: reject,
        } as never);
      });
      if (first.kind !== "full" || first.data?.body !== `v${k}`) failures.push(`k=${k}: first message ${JSON.stringify(first)}`);
    }
    writing = false;
    await writer;
    expect(written).toBeGreaterThan(0);
    expect(failures).toEqual([]);
    expect(Math.max(...settleMs)).toBeLessThan(20_000);
  });

  it("settled() with an aborted signal rejects, and after close() does not hang", { timeout: 60_000 }, async () => {
    const { store, close } = await createTestStore(engine);
    cleanups.push(close);
    const app = buildCrdtApp(store);
    await app.tether.start();
    const controller = new AbortController();
    controller.abort();
    await expect(app.tether.settled(controller.signal)).rejects.toBeTruthy();
    await app.tether.close();
    const outcome = await Promise.race([
      app.tether.settled().then(() => "resolved", (e: unknown) => `rejected: ${String(e)}`),
      new Promise((r) => setTimeout(() => r("hung 10s"), 10_000)),
    ]);
    expect(outcome).not.toBe("hung 10s");
  });
});
