// Bad $live input through the public wire: paths that are not query procedures (a mutation, the
// reserved procedures, prototype keys), deep inputs. Each must end in a typed error, never run a
// mutation, never crash the node.
import { afterEach, describe, expect, it } from "vitest";
import { createTestStore, engines } from "../support/databases.ts";
import { buildCrdtApp, serve, type CrdtRouter } from "../support/crdtApp.ts";
import { connectAs } from "../support/userClient.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function outcome(trpc: ReturnType<typeof connectAs<CrdtRouter>>["trpc"], path: string, input: unknown): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("no answer in 10s"), 10_000);
    const sub = trpc.$live.subscribe({ path, input } as never, {
      onData: (m: unknown) => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(`data ${JSON.stringify(m).slice(0, 120)}`);
      },
      onError: (e: { data?: { code?: string } }) => {
        clearTimeout(timer);
        resolve(`error ${e.data?.code ?? `(no code) ${String((e as Error).message).slice(0, 100)}`}`);
      },
    } as never);
  });
}

describe.each(engines)("$live bad paths and inputs (%s)", (engine) => {
  it.each(["ws", "sse"] as const)("over %s", { timeout: 120_000 }, async (transport) => {
    const { store, close } = await createTestStore(engine);
    cleanups.push(close);
    await store.db.user.create({ data: { id: "alice", email: "a@x", name: "a" } });
    await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
    await store.db.note.create({ data: { id: "n1", projectId: "p1", body: "start" } });
    const app = buildCrdtApp(store);
    await app.tether.start();
    cleanups.push(() => app.tether.close());
    const server = await serve(app.router);
    cleanups.push(() => server.close());
    const { trpc } = connectAs<CrdtRouter>(server, "alice", cleanups, { subscriptions: transport });
    const results: Record<string, string> = {};
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 200; i++) cur = (cur.a = {}) as Record<string, unknown>;
    const cases: Array<[string, string, unknown]> = [
      ["mutation path", "notes.setBody", { id: "n1", body: "PWNED" }],
      ["$live itself", "$live", { path: "notes.get", input: { id: "n1" } }],
      ["crdt push", "$crdt.push", { model: "Note", id: "n1", field: "body", update: "AA==" }],
      ["proto path", "__proto__", {}],
      ["constructor", "constructor", {}],
      ["notes.__proto__", "notes.__proto__", {}],
      ["empty", "", {}],
      ["deep input", "notes.get", deep],
    ];
    for (const [name, path, input] of cases) results[name] = await outcome(trpc, path, input);
    const row = await store.db.note.findUnique({ where: { id: "n1" } });
    expect(row?.body).toBe("start");
    
    for (const [name, result] of Object.entries(results)) expect(`${name}: ${result}`).toMatch(/: error (BAD_REQUEST|NOT_FOUND|PAYLOAD_TOO_LARGE)$/);
    // The node still serves.
    expect(await outcome(trpc, "notes.get", { id: "n1" })).toMatch(/^data /);
  });
});
