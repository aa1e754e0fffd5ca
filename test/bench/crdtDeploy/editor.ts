/**
 * One editor of the deployment bench, as its own process. Tether: `@tether/client`'s CRDT session
 * (`createTetherClient` + a `CrdtSessionRegistry` over a timed `crdtTransportOf`: `$crdt.stream` over WebSocket, pushes
 * from its outbox over HTTP batch, reconnect and re-push as the real client does; no persistence).
 * Hocuspocus: `@hocuspocus/provider` on a `yjs` document over WebSocket. Both with their clients'
 * default reconnect backoff.
 *
 * The parent says `type` (one character at a random position of `body`); the editor records the
 * keystroke's id in its own clock (Loro: its peer's op counter; Yjs: its client's clock) and the
 * wall time. On every remote change it records, per other peer, the highest id it now holds and
 * when — so the parent can tell, for every (keystroke, receiver) pair, when it arrived.
 * Times are `wallNow()` (the one clock every process on this machine shares).
 */
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { createTetherClient } from "@tether/client";
import { CrdtSessionRegistry, crdtTransportOf, type CrdtDocSession } from "@tether/client/crdt";
import type { AnyRouter } from "@trpc/server";
import { WebSocket } from "ws";
import type { LoroDoc } from "loro-crdt";
import * as Y from "yjs";
import { random } from "../../support/random.ts";
import { announceReady, childConfig, serveRequests, wallNow } from "./processes.ts";

export type System = "tether" | "hocuspocus";

export interface EditorConfig {
  system: System;
  /** Tether: `http://host:port`; Hocuspocus: `ws://host:port`. */
  url: string;
  noteId: string;
  index: number;
  seed: number;
}

/** What an editor reports at the end (and at READY: its peer). */
export interface EditorReport {
  peer: string;
  /** Own keystrokes: [id, typedAt]. */
  typed: Array<[number, number]>;
  /** Per other peer: [highest id held, since when], one entry per change of it. */
  arrivals: Record<string, Array<[number, number]>>;
  text: string;
  /** Peer → highest id held. */
  version: Record<string, number>;
  /** Tether only: own keystrokes' durable acknowledgements, [id, ackedAt] (a push acks every id up to the one it started at). */
  acked: Array<[number, number]>;
  /** Tether only: when each own keystroke first left in a push, [id, sentAt] (the first push sent after it). */
  sent: Array<[number, number]>;
  /** Tether: failed pushes by error code (the session re-sends them after its backoff). */
  pushFailures: Record<string, number>;
  /** Tether: the session's counters (`CrdtSessionStats`). */
  sessionStats?: Record<string, unknown>;
  /** Tether: unacknowledged ops; Hocuspocus: unsynced changes. */
  pending: number;
  status: string;
}

/** A text document the editor types into, whichever system carries it. */
interface Side {
  peer(): string;
  text(): string;
  length(): number;
  insert(pos: number, char: string): number;
  version(): Map<string, number>;
  onRemote(handler: () => void): void;
  status(): { status: string; pending: number };
  stats?(): Record<string, unknown>;
  synced(): Promise<void>;
  close(): Promise<void>;
}

const FIELD = "body";
const config = childConfig<EditorConfig>();
/** Tether pushes that resolved: [own op counter when sent, when acknowledged]. */
const acks: Array<[number, number]> = [];
/** Tether pushes sent: [own op counter when sent, when sent]. */
const sends: Array<[number, number]> = [];
/** Tether pushes that failed, by error code. */
const pushFailures: Record<string, number> = {};

async function tetherSide(): Promise<Side> {
  const user = `e${config.index}`;
  const tether = createTetherClient<AnyRouter>({
    url: `${config.url}/trpc`,
    headers: { "x-user": user },
    subscriptions: {
      transport: "ws",
      url: `${config.url.replace(/^http/, "ws")}/trpc`,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: { user },
      lazyCloseMs: false,
    },
    environment: null,
  });
  // The client's own transport, timed: a push that resolves acknowledges (durably) every own op
  // committed before it was sent.
  const transport = crdtTransportOf(tether);
  let doc: LoroDoc | null = null;
  const push: typeof transport.push = async (input) => {
    const upTo = doc ? (doc.oplogVersion().get(doc.peerIdStr) ?? 0) : 0;
    sends.push([upTo, wallNow()]);
    try {
      const result = await transport.push(input);
      acks.push([upTo, wallNow()]);
      return result;
    } catch (error) {
      // Counted by tRPC code ("transport" when the request itself failed): the session retries.
      const code = (error as { data?: { code?: string } }).data?.code ?? "transport";
      pushFailures[code] = (pushFailures[code] ?? 0) + 1;
      throw error;
    }
  };
  // Its own registry (not the client's `crdtSessionsOf`) for the timed transport; closed with the client.
  const registry = new CrdtSessionRegistry({ persistence: null, transport: { ...transport, push }, connection: tether.connection });
  tether.onClose(() => registry.close());
  const session: CrdtDocSession = registry.acquire({ model: "Note", id: config.noteId, field: FIELD }).session;
  doc = await session.ready();
  const text = doc.getText(FIELD);
  const loro = doc;
  return {
    peer: () => loro.peerIdStr,
    text: () => text.toString(),
    length: () => text.length,
    insert(pos, char) {
      text.insert(pos, char);
      loro.commit();
      return loro.oplogVersion().get(loro.peerIdStr) ?? 0;
    },
    version: () => loro.oplogVersion().toJSON() as Map<string, number>,
    onRemote(handler) {
      // Every event, not only `by: "import"`: Loro may deliver an import's changes together with
      // a local commit made before its events were emitted. The handler only looks at other
      // peers' counters, which a local commit never moves.
      loro.subscribe(() => handler());
    },
    status: () => ({ status: session.state.status, pending: session.state.pending }),
    stats: () => ({ ...session.stats }),
    synced: () =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (session.state.status !== "synced") return false;
          resolve();
          return true;
        };
        if (check()) return;
        const off = session.subscribe(() => check() && off());
      }),
    close: () => tether.close(),
  };
}

async function hocuspocusSide(): Promise<Side> {
  const ydoc = new Y.Doc();
  const socket = new HocuspocusProviderWebsocket({ url: config.url, WebSocketPolyfill: WebSocket });
  const provider = new HocuspocusProvider({ name: config.noteId, document: ydoc, websocketProvider: socket });
  provider.attach();
  const text = ydoc.getText(FIELD);
  const local = Symbol("local");
  return {
    peer: () => String(ydoc.clientID),
    text: () => text.toString(),
    length: () => text.length,
    insert(pos, char) {
      ydoc.transact(() => text.insert(pos, char), local);
      return Y.decodeStateVector(Y.encodeStateVector(ydoc)).get(ydoc.clientID) ?? 0;
    },
    version: () => new Map([...Y.decodeStateVector(Y.encodeStateVector(ydoc))].map(([client, clock]) => [String(client), clock])),
    onRemote(handler) {
      ydoc.on("update", (_update: Uint8Array, origin: unknown) => {
        if (origin !== local) handler();
      });
    },
    status: () => ({ status: provider.isSynced ? "synced" : "syncing", pending: provider.unsyncedChanges }),
    synced: () =>
      new Promise<void>((resolve) => {
        if (provider.isSynced) return resolve();
        provider.on("synced", () => resolve());
      }),
    async close() {
      provider.destroy();
      socket.destroy();
    },
  };
}

const side = config.system === "tether" ? await tetherSide() : await hocuspocusSide();
await side.synced();

const me = side.peer();
const typed: Array<[number, number]> = [];
const arrivals: Record<string, Array<[number, number]>> = {};
const held = new Map<string, number>();
side.onRemote(() => {
  const t = wallNow();
  for (const [peer, id] of side.version()) {
    if (peer === me || id <= (held.get(peer) ?? 0)) continue;
    held.set(peer, id);
    (arrivals[peer] ??= []).push([id, t]);
  }
});

/**
 * Each own keystroke's first event of `events` ([op counter it covers up to, when], in order):
 * its first acknowledgement (the first push sent after it that resolved), or its first send.
 */
function firstCovering(events: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let a = 0;
  for (const [id] of typed) {
    while (a < events.length && events[a]![0] < id) a += 1;
    if (a < events.length) out.push([id, events[a]![1]]);
  }
  return out;
}

const rnd = random(config.seed);
const report = (): EditorReport => ({
  peer: me,
  typed,
  acked: firstCovering(acks),
  sent: firstCovering(sends),
  pushFailures,
  arrivals,
  text: side.text(),
  sessionStats: side.stats?.(),
  version: Object.fromEntries(side.version()),
  ...side.status(),
});

serveRequests(async (message) => {
  switch (message.type) {
    case "type": {
      const at = wallNow();
      const char = String.fromCharCode(97 + Math.floor(rnd() * 26));
      const id = side.insert(Math.floor(rnd() * (side.length() + 1)), char);
      typed.push([id, at]);
      return undefined;
    }
    case "status":
      return { ...side.status(), version: Object.fromEntries(side.version()) };
    case "report":
      return report();
    case "close":
      await side.close();
      setImmediate(() => process.exit(0));
      return undefined;
    default:
      throw new Error(`unknown request ${String(message.type)}`);
  }
});
announceReady({ peer: me });
