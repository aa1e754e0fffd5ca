// watchQuery on a query key whose shared live query is already live (a second watcher while the
// first holds it, or a re-watch within the release delay — a remount): the new listener must get
// the current value and status, and later changes.
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createTetherClient, watchQuery } from "@tether/client";
import { createTestStore, engines } from "../support/databases.ts";
import { buildCrdtApp, serve, type CrdtRouter } from "../support/crdtApp.ts";
import { waitFor } from "../support/waitFor.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
type Note = { id: string; body: string } | null;
const key = [["notes", "get"], { input: { id: "n1" }, type: "query" }];

describe.each(engines)("watchQuery on an already-live entry (%s)", (engine) => {
  it.each(["second watcher while the first holds it", "re-watch right after stop (remount)"])("%s", { timeout: 120_000 }, async (mode) => {
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
    const client = createTetherClient<CrdtRouter>({
      url: `${server.url}/trpc`,
      headers: { "x-user": "alice" },
      subscriptions: { transport: "ws", url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user: "alice" } },
    });
    cleanups.push(() => client.close());
    const first: Array<[string | undefined, string]> = [];
    const stopFirst = watchQuery<Note>(client, { path: "notes.get", input: { id: "n1" }, queryKey: key }, (d, s) => first.push([d?.body, s]));
    await waitFor("first live", () => first.some(([b, s]) => b === "start" && s === "live"), { timeoutMs: 30_000 });
    if (mode.startsWith("re-watch")) stopFirst();
    else cleanups.push(stopFirst);
    const second: Array<[string | undefined, string]> = [];
    const stopSecond = watchQuery<Note>(client, { path: "notes.get", input: { id: "n1" }, queryKey: key }, (d, s) => second.push([d?.body, s]));
    cleanups.push(stopSecond);
    await store.db.note.update({ where: { id: "n1" }, data: { body: "changed" } });
    await waitFor("second watcher sees the change", () => second.some(([b, s]) => b === "changed" && s === "live"), { timeoutMs: 15_000 }).catch((e) => {
      throw new Error(`${e.message}: second got ${JSON.stringify(second)}; first got ${JSON.stringify(first)}`);
    });
    expect(second[0]).toEqual(["start", "live"]);
  });
});
