// CrdtDocSession against an in-memory stand-in for the server's `$crdt` procedures (same wire
// contract: base64 Loro updates, catch-up from the caller's version, one message per change).
// The real server is exercised in test/client/crdt.test.tsx; this covers the session's own
// logic (outbox, coalescing, offline, persistence) fast and deterministically.
import { LoroDoc, VersionVector } from "loro-crdt";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fromBase64, toBase64 } from "@tether/protocol";
import { memoryCrdtPersistence, type CrdtPersistence } from "./persistence.ts";
import type { CrdtPushInput, CrdtVersionInput } from "@tether/protocol";
import { CrdtSessionRegistry } from "./registry.ts";
import { CrdtDocSession } from "./session.ts";
import type { CrdtStreamHandlers, CrdtTransport } from "./transport.ts";

const target = { model: "Note", id: "n1", field: "body" };

class FakeServer {
  readonly doc = new LoroDoc();
  readonly streams = new Set<{ handlers: CrdtStreamHandlers; link: FakeLink; input: CrdtVersionInput; started: boolean }>();
  readonly pushes: Uint8Array[] = [];
  readonly catchUps: Uint8Array[] = [];

  catchUp(input: CrdtVersionInput) {
    const from = input.version ? VersionVector.decode(fromBase64(input.version)) : undefined;
    const update = this.doc.export({ mode: "update", from });
    this.catchUps.push(update);
    return { update: toBase64(update), version: toBase64(this.doc.oplogVersion().encode()) };
  }

  apply(update: Uint8Array) {
    const before = this.doc.oplogVersion();
    this.doc.import(update);
    const message = {
      update: toBase64(this.doc.export({ mode: "update", from: before })),
      version: toBase64(this.doc.oplogVersion().encode()),
    };
    for (const stream of this.streams) if (stream.started && stream.link.online) stream.handlers.onData(message);
  }
}

/** One client's connection to the fake server; `online = false` behaves like a dropped socket. */
class FakeLink implements CrdtTransport {
  online = true;
  pushCount = 0;
  constructor(private readonly server: FakeServer) {}

  stream(input: CrdtVersionInput, handlers: CrdtStreamHandlers) {
    const entry = { handlers, link: this, input, started: false };
    this.server.streams.add(entry);
    queueMicrotask(() => this.start(entry));
    return { unsubscribe: () => void this.server.streams.delete(entry) };
  }

  private start(entry: { handlers: CrdtStreamHandlers; input: CrdtVersionInput; started: boolean }) {
    if (!this.online || entry.started) {
      // Like tRPC's wsLink: a subscription made while the socket is down hears the last error.
      if (!this.online) entry.handlers.onConnectionStateChange?.({ state: "connecting", error: new Error("socket closed") });
      return;
    }
    entry.started = true;
    entry.handlers.onConnectionStateChange?.({ state: "pending", error: null });
    entry.handlers.onData(this.server.catchUp(entry.input));
  }

  async push(input: CrdtPushInput) {
    this.pushCount += 1;
    await Promise.resolve();
    if (!this.online) throw new Error("fetch failed");
    const bytes = fromBase64(input.update);
    this.server.pushes.push(bytes);
    this.server.apply(bytes);
    return { version: toBase64(this.server.doc.oplogVersion().encode()) };
  }

  async pull(input: CrdtVersionInput) {
    return this.server.catchUp(input);
  }

  goOffline() {
    this.online = false;
    for (const s of this.server.streams) {
      if (s.link !== this) continue;
      s.started = false;
      s.handlers.onConnectionStateChange?.({ state: "connecting", error: new Error("socket closed") });
    }
  }

  goOnline() {
    this.online = true;
    for (const s of [...this.server.streams]) if (s.link === this) this.start(s);
  }
}

const sessions: CrdtDocSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.dispose();
  vi.useRealTimers();
});

function open(link: FakeLink, persistence: CrdtPersistence | null = null) {
  const session = new CrdtDocSession(target, { transport: link, persistence, retry: { initialDelayMs: 5, maxDelayMs: 20 }, saveDelayMs: 5 });
  sessions.push(session);
  session.start();
  return session;
}

/** Waits for `check`; under fake timers each poll also moves the fake clock by the interval. */
async function until(check: () => boolean, timeoutMs = 2000) {
  await vi.waitFor(() => {
    if (!check()) throw new Error("condition not reached in time");
  }, { timeout: timeoutMs, interval: 2 });
}

/** Far past the longest retry delay of `open` (retry.maxDelayMs): any retry would have been due. */
const PAST_EVERY_RETRY_MS = 1_000;

const text = (s: CrdtDocSession) => s.state.doc?.getText("body").toString();

describe("CrdtDocSession", () => {
  it("loads, catches up, pushes local commits and imports remote ones without echoing them", async () => {
    const server = new FakeServer();
    server.doc.getText("body").insert(0, "hello");
    server.doc.commit();
    const a = open(new FakeLink(server));
    const b = open(new FakeLink(server));
    expect(a.state.status).toBe("loading");
    await until(() => a.state.status === "synced" && b.state.status === "synced");
    expect(text(a)).toBe("hello");
    a.state.doc!.getText("body").insert(5, " world");
    a.state.doc!.commit();
    expect(a.state.pending).toBeGreaterThan(0);
    await until(() => text(b) === "hello world" && a.state.status === "synced");
    expect(a.state.pending).toBe(0);
    // b only imported: it never pushed anything.
    expect(b.stats.pushes).toBe(0);
    expect(server.pushes).toHaveLength(1);
  });

  it("sends commits of one task in one push, and later commits without waiting for the push in flight", async () => {
    const server = new FakeServer();
    const link = new FakeLink(server);
    // Acks wait for the test; the server has (and relays) each push as it arrives.
    const acks: Array<() => void> = [];
    const push = link.push.bind(link);
    link.push = async (input) => {
      const result = await push(input);
      await new Promise<void>((resolve) => acks.push(resolve));
      return result;
    };
    const a = open(link);
    await until(() => a.state.status === "synced");
    const body = a.state.doc!.getText("body");
    for (const ch of "abc") {
      body.insert(body.length, ch);
      a.state.doc!.commit();
    }
    await until(() => acks.length === 1);
    body.insert(body.length, "d");
    a.state.doc!.commit();
    // Sent while the first is unanswered, carrying everything unacknowledged.
    await until(() => acks.length === 2);
    expect(server.doc.getText("body").toString()).toBe("abcd");
    expect(a.state.pending).toBeGreaterThan(0);
    for (const ack of acks.splice(0)) ack();
    await until(() => a.state.status === "synced");
    expect(link.pushCount).toBe(2);
    expect(a.stats.maxPushesInFlight).toBe(2);
  });

  it("keeps editing offline, then resubscribes from its version and sends the outbox", async () => {
    // The session's retry timers on a fake clock: "still offline" is then checked after every
    // retry that could have been due, not after a guess at how long one takes.
    vi.useFakeTimers();
    const server = new FakeServer();
    server.doc.getText("body").insert(0, "base");
    server.doc.commit();
    const linkA = new FakeLink(server);
    const a = open(linkA);
    const b = open(new FakeLink(server));
    await until(() => a.state.status === "synced" && b.state.status === "synced");
    const streamsBefore = a.stats.streams;
    linkA.goOffline();
    expect(a.state.status).toBe("offline");
    a.state.doc!.getText("body").insert(0, "offline ");
    a.state.doc!.commit();
    b.state.doc!.getText("body").insert(0, "online");
    b.state.doc!.commit();
    await until(() => text(b) === "onlinebase" && b.state.status === "synced");
    await vi.advanceTimersByTimeAsync(PAST_EVERY_RETRY_MS);
    expect(a.state.status).toBe("offline");
    expect(text(a)).toBe("offline base");
    linkA.goOnline();
    await until(() => a.state.status === "synced" && text(a) === text(b) && text(b)!.length === 18);
    // Exactly one resubscription (queued while down; no loop on the transport's repeated error).
    expect(a.stats.streams).toBe(streamsBefore + 1);
    // The resubscription asked from the version it held, not from scratch.
    expect(a.stats.lastStreamVersion).toBeDefined();
    expect(server.catchUps.at(-1)!.length).toBeLessThan(server.doc.export({ mode: "update" }).length);
    expect(server.doc.getText("body").toString()).toBe(text(a));
  });

  it("persists an offline edit with its outbox and sends it from a new session after a reload", async () => {
    const server = new FakeServer();
    const persistence = memoryCrdtPersistence();
    const link = new FakeLink(server);
    link.online = false;
    const first = open(link, persistence);
    await until(() => first.state.doc !== null);
    first.state.doc!.getText("body").insert(0, "draft");
    first.state.doc!.commit();
    await first.dispose();
    expect(server.doc.getText("body").toString()).toBe("");

    const second = open(new FakeLink(server), persistence);
    await until(() => second.state.status === "synced");
    expect(text(second)).toBe("draft");
    expect(server.doc.getText("body").toString()).toBe("draft");
    expect(second.state.pending).toBe(0);
  });

  it("sends an outbox too large for one push in halves", async () => {
    const server = new FakeServer();
    const link = new FakeLink(server);
    const push = link.push.bind(link);
    link.push = async (input) => {
      if (fromBase64(input.update).length > 400) throw { data: { code: "PAYLOAD_TOO_LARGE" } };
      return push(input);
    };
    const a = open(link);
    await until(() => a.state.status === "synced");
    link.goOffline();
    const body = a.state.doc!.getText("body");
    for (let i = 0; i < 20; i += 1) {
      body.insert(body.length, `paragraph ${i} ${"x".repeat(40)}\n`);
      a.state.doc!.commit();
    }
    link.goOnline();
    await until(() => a.state.status === "synced");
    expect(server.doc.getText("body").toString()).toBe(body.toString());
    expect(server.pushes.length).toBeGreaterThan(2);
    for (const update of server.pushes) expect(update.length).toBeLessThanOrEqual(400);
  });

  it("reports a permanent stream error and stops", async () => {
    vi.useFakeTimers();
    const server = new FakeServer();
    const link = new FakeLink(server);
    link.stream = (_input, handlers) => {
      queueMicrotask(() => handlers.onError({ data: { code: "NOT_FOUND" } }));
      return { unsubscribe: () => undefined };
    };
    const a = open(link);
    await until(() => a.state.status === "error");
    expect(a.state.error).toEqual({ data: { code: "NOT_FOUND" } });
    await vi.advanceTimersByTimeAsync(PAST_EVERY_RETRY_MS);
    expect(a.stats.streams).toBe(1);
  });
});

describe("CrdtSessionRegistry", () => {
  it("shares one session per (model, id, field) and ends it after the last user's delay", async () => {
    const server = new FakeServer();
    const registry = new CrdtSessionRegistry({ transport: new FakeLink(server), persistence: null, releaseDelayMs: 20 });
    const first = registry.acquire(target);
    const second = registry.acquire({ ...target });
    const other = registry.acquire({ ...target, id: "n2" });
    expect(second.session).toBe(first.session);
    expect(other.session).not.toBe(first.session);
    await until(() => first.session.state.status === "synced");
    expect(server.streams.size).toBe(2);

    first.release();
    second.release();
    // Back within the delay (StrictMode, a route change): the same session, stream kept.
    const again = registry.acquire(target);
    expect(again.session).toBe(first.session);
    again.release();
    await until(() => first.session.isDisposed);
    expect(registry.get(target)).toBeUndefined();
    expect(registry.acquire(target).session).not.toBe(first.session);
    await registry.close();
    expect(other.session.isDisposed).toBe(true);
    expect(server.streams.size).toBe(0);
  });
});
