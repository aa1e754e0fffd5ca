// Collaborative editing at typing speed (issue 18), on both engines, with `@tether/client`'s CRDT
// sessions against a real server over real sockets: what must never make a keystroke wait for
// the database.
//
// - The session does not wait for a push's durable ack before sending the next keystroke: while
//   the document's commit is held (its row locked by the test), later keystrokes still reach the
//   other editor (relayed), and are acknowledged once the lock goes.
// - A projection of the document into its column (every `projectionDelayMs` while people type)
//   does not re-run the documents' access checks: with every write check held by the test, a
//   keystroke after a projection still reaches the other editor.
// - A push the server refuses with a retryable code (here TOO_MANY_REQUESTS) is retried promptly,
//   not on the connection's backoff (set to an hour here).
// - Pushes go over the client's WebSocket (one message on an open connection, like the stream's),
//   not one HTTP request each: with every HTTP request failing, typing still reaches the others.
import { createTetherClient } from "@tether/client";
import { crdtSessionsOf, type CrdtDocSession, type CrdtSessionRegistry } from "@tether/client/crdt";
import type { TetherServer } from "@tether/server/adapters/node";
import type { AnyRouter } from "@trpc/server";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { WebSocket } from "ws";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildCrdtApp, notePolicyHooks, serve, type Ctx } from "./support/crdtApp.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { storeForSuite } from "./support/suiteStore.ts";
import { waitFor } from "./support/waitFor.ts";
import type { RateLimitOptions } from "@tether/server";
import { tetherInternals } from "@tether/server/internal";

// Conditions that must come true: generous on a loaded machine (this bounds failure detection only).
const LONG = { timeoutMs: 60_000 };

describe.each(engines)("typing into a CRDT document on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildCrdtApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  storeForSuite(engine, (made) => (store = made));

  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Note", "ProjectMember", "Task", "Project", "User", "_tether_crdt_docs", "_tether_crdt_updates" CASCADE`);
    await store.db.user.createMany({ data: ["alice", "bob"].map((id) => ({ id, email: `${id}@x`, name: id })) });
    for (const p of ["p1", "p2"]) {
      await store.db.project.create({ data: { id: p, name: p, ownerId: "alice" } });
      await store.db.projectMember.create({ data: { projectId: p, userId: "bob" } });
      await store.db.note.create({ data: { id: p.replace("p", "n"), projectId: p, body: "" } });
    }
  });

  afterEach(async () => {
    notePolicyHooks.beforeUpdateCheck = null;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app?.tether.close();
  });

  /** The projection waits for the test (an hour), unless a test flushes it. */
  async function start(rate?: RateLimitOptions<Ctx>) {
    app = buildCrdtApp(store, { projectionDelayMs: 3_600_000 }, undefined, rate);
    server = await serve(app.router);
  }

  /** `user`'s Tether client and its CRDT sessions (no persistence; the connection's backoff as given). */
  function editor(user: string, retry = { initialDelayMs: 20, maxDelayMs: 200 }, fetch?: typeof globalThis.fetch): CrdtSessionRegistry {
    const tether = createTetherClient<AnyRouter>({
      url: `${server.url}/trpc`,
      fetch,
      headers: { "x-user": user },
      subscriptions: { transport: "ws", url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user } },
      environment: null,
      crdt: { persistence: null, retry },
    });
    const sessions = crdtSessionsOf(tether);
    cleanups.push(() => tether.close());
    return sessions;
  }

  async function open(sessions: CrdtSessionRegistry, id = "n1"): Promise<CrdtDocSession> {
    const { session } = sessions.acquire({ model: "Note", id, field: "body" });
    await session.ready();
    await waitFor(`${id} synced`, () => session.state.status === "synced", LONG);
    return session;
  }

  const text = (s: CrdtDocSession) => s.state.doc!.getText("body").toString();
  function type(s: CrdtDocSession, chars: string): void {
    const body = s.state.doc!.getText("body");
    body.insert(body.length, chars);
    s.state.doc!.commit();
  }

  it("keystrokes reach the others while an earlier push waits for its commit", { timeout: 180_000 }, async () => {
    await start();
    const alice = await open(editor("alice"));
    const bob = await open(editor("bob"));
    type(alice, "a");
    await waitFor("the first keystroke everywhere, acknowledged", () => text(bob) === "a" && alice.state.pending === 0, LONG);

    // The document's commits wait for this transaction (its row lock; PGlite: the one connection).
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked = false;
    const holding = store.sql.transaction(async (tx) => {
      await tx.query(`SELECT 1 FROM "Note" WHERE "id" = 'n1' FOR UPDATE`);
      locked = true;
      await released;
    });
    try {
      await waitFor("the row lock", () => locked, LONG);
      type(alice, "b");
      await waitFor("the second keystroke at bob (relayed)", () => text(bob) === "ab", LONG);
      // Its push is not acknowledged (the commit waits for the lock): the next keystroke goes anyway.
      type(alice, "c");
      await waitFor("the third keystroke at bob, before the second is durable", () => text(bob) === "abc", LONG);
      expect(alice.state.pending).toBeGreaterThan(0);
      expect(alice.stats.maxPushesInFlight).toBeGreaterThan(1);
    } finally {
      release();
      await holding;
    }
    await waitFor("every keystroke acknowledged", () => alice.state.pending === 0 && alice.state.status === "synced", LONG);
    await tetherInternals(app.tether).crdt.flushProjections();
    expect((await store.db.note.findUnique({ where: { id: "n1" } }))?.body).toBe("abc");
  });

  it("a projection of the document does not hold keystrokes behind access re-checks", { timeout: 180_000 }, async () => {
    await start();
    const alice = await open(editor("alice"));
    const bobSessions = editor("bob");
    const bob = await open(bobSessions);
    // Bob also reads n2: a change of n2's row re-checks that, which the test waits for below.
    await open(bobSessions, "n2");
    type(alice, "a");
    await waitFor("the first keystroke everywhere, acknowledged", () => text(bob) === "a" && alice.state.pending === 0, LONG);

    // From now on every write check of a note (a push's write verdict, re-checked) waits.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    notePolicyHooks.beforeUpdateCheck = () => held;
    try {
      await tetherInternals(app.tether).crdt.flushProjections();
      expect((await store.db.note.findUnique({ where: { id: "n1" } }))?.body).toBe("a");
      // A later commit the hub's access watch does act on: n2's row changed (not its document).
      // The hub reads the feed in commit order, so once this is re-checked the projection was seen.
      const rechecks = app.tether.stats.crdt().accessRechecks;
      await store.sql.query(`UPDATE "Note" SET "updatedAt" = now() WHERE "id" = 'n2'`);
      await waitFor("the hub to re-check after n2's change", () => app.tether.stats.crdt().accessRechecks > rechecks, LONG);
      type(alice, "b");
      await waitFor("the keystroke after the projection at bob", () => text(bob) === "ab", LONG);
      await waitFor("acknowledged", () => alice.state.pending === 0, LONG);
    } finally {
      release();
    }
  });

  it("a push refused with a retryable code is retried at once, not on the connection's backoff", { timeout: 180_000 }, async () => {
    // The next `refuse` pushes are refused with TOO_MANY_REQUESTS; others counted as usual.
    let refuse = 0;
    let refused = 0;
    await start({
      store: (config) => {
        const limiter = new RateLimiterMemory(config);
        if (!config.keyPrefix.endsWith("$crdt.push")) return limiter;
        const consume = limiter.consume.bind(limiter);
        limiter.consume = (key, points) => {
          if (refuse === 0) return consume(key, points);
          refuse -= 1;
          refused += 1;
          return Promise.reject(new RateLimiterRes(0, 1_000, 1, false));
        };
        return limiter;
      },
    });
    // An hour's backoff for a lost connection: a refusal must not wait that.
    const alice = await open(editor("alice", { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000 }));
    const bob = await open(editor("bob"));
    refuse = 2;
    type(alice, "a");
    await waitFor("the keystroke at bob and acknowledged after two refusals", () => text(bob) === "a" && alice.state.pending === 0, LONG);
    expect(refused).toBe(2);
    expect(alice.stats.pushRefusals).toBeGreaterThanOrEqual(1);
    expect(alice.state.status).toBe("synced");
  });

  it("pushes travel over the WebSocket, not as HTTP requests", { timeout: 180_000 }, async () => {
    await start();
    let httpCalls = 0;
    const noHttp = (() => {
      httpCalls += 1;
      return Promise.reject(new TypeError("fetch failed (HTTP cut by the test)"));
    }) as typeof globalThis.fetch;
    const alice = await open(editor("alice", undefined, noHttp));
    const bob = await open(editor("bob"));
    type(alice, "a");
    type(bob, "b");
    await waitFor("both keystrokes everywhere, acknowledged", () => text(alice).length === 2 && text(bob) === text(alice) && alice.state.pending === 0, LONG);
    expect(httpCalls).toBe(0);
    expect(alice.state.status).toBe("synced");
  });
});
