/**
 * CRDT suite: one collaborative document (`Note.body`, `/// @crdt(text)`) edited by 50 editors at
 * once, on each engine. One Tether server per engine (`createTetherServer`, the `$crdt`
 * procedures, the test suite's note policies); every editor is its own tRPC client — its
 * `$crdt.stream` subscription over its own WebSocket, its `$crdt.push` mutations over HTTP batch
 * (as `test/crdt.test.ts` and the Tether client connect) — with its own `LoroDoc` (peer id =
 * index + 1), in this process. Each editor is its own user (a member of the note's project),
 * except in the last throughput run, where all 50 sign in as one user: the stream hub re-checks
 * readability once per user per change, so that run shows what 50 checks per push cost.
 *
 * 1. Throughput (closed loop): every editor types as fast as the server acknowledges — insert one
 *    character at a random position, commit, push it, wait for the acknowledgement, repeat — for
 *    a fixed time. Reported: pushes acknowledged per second inside the window, push round-trip
 *    p50/p99, then how long until every editor holds every push ("drain"). At the end all 50
 *    documents and the projected `Note.body` column must be identical, or the bench throws.
 * 2. Keystroke latency (open loop), at 0.2 and 2 keystrokes/s per editor (10/s and 100/s in all,
 *    evenly staggered), single-character inserts at random positions, each rate on a fresh note.
 *    As the real client does, an editor has one push in flight at a time: keystrokes made
 *    meanwhile go together in its next push (only its own operations, an `updates-in-range`
 *    export like the client's outbox). Latency of a (keystroke, receiver) pair: from just before
 *    the editor's local insert until the receiver has imported a stream message containing it
 *    (its version vector covers the keystroke's op counter), `performance.now()` in this one
 *    process. Every keystroke must reach all 49 others and all documents and the column must
 *    converge, or the bench throws.
 *
 * Everything — the 50 clients, the server, and with PGlite the database — shares this process
 * and the machine's cores: the latencies include the clients' own work (every change is imported
 * by 50 documents; messages that arrive together are imported as one batch).
 * clientImportCpuPct = the editors' Loro imports as a share of one core over the phase;
 * cpuPercent = this whole process (the Postgres server's CPU is not in it). A push dropped by
 * the HTTP transport is re-sent, as the real client does (pushRetries).
 */
import { TRPCClientError } from "@trpc/client";
import { LoroDoc } from "loro-crdt";
import { createTetherServer, type TetherServer } from "@tether/server";
import { b64, buildCrdtApp, connect as connectClient, random, unb64 } from "../support/crdtApp.ts";
import { createTestStore, type AppStore } from "../support/databases.ts";
import { userFromRequest } from "../support/userClient.ts";
import { now, resourceMeter, round, sleep, summarize, type BenchOptions, type BenchResult, type Engine } from "./harness.ts";

const SUITE = "crdt";
const EDITORS = 50;
const FIELD = "body";

interface Sizes {
  throughputSeconds: number;
  latencySeconds: number;
  /** Keystrokes per second per editor in the latency phases. */
  keystrokesPerEditorPerSec: number[];
  /** Longest wait for every editor (and the column) to hold everything after a phase. */
  convergeTimeoutMs: number;
}

function sizes(quick: boolean): Sizes {
  return quick
    ? { throughputSeconds: 2, latencySeconds: 3, keystrokesPerEditorPerSec: [0.2, 2], convergeTimeoutMs: 120_000 }
    : { throughputSeconds: 10, latencySeconds: 10, keystrokesPerEditorPerSec: [0.2, 2], convergeTimeoutMs: 300_000 };
}

const buildApp = (store: AppStore) => buildCrdtApp(store);

/** One editor's connection: subscriptions over its own WebSocket, pushes over HTTP batch. */
function connect(server: TetherServer, user: string) {
  const closers: Array<() => unknown> = [];
  const client = connectClient(server, user, closers);
  return { client, close: () => closers.forEach((close) => close()) };
}
type Client = ReturnType<typeof connect>["client"];

/** A keystroke: the sender's op counter after it (a receiver has it once its version reaches it) and when it was typed. */
interface Keystroke {
  counter: number;
  at: number;
}

/**
 * An editor of one note: its own LoroDoc (peer id = index + 1), its stream, its pushes of its
 * own unacknowledged operations, one in flight at a time.
 */
class Editor {
  readonly doc = new LoroDoc();
  readonly peer: `${number}`;
  private acked = 0;
  private subscription: { unsubscribe(): void } | null = null;
  private pushing: Promise<void> | null = null;
  readonly errors: unknown[] = [];
  messages = 0;
  /** Imports (a batch of the messages that arrived together counts once). */
  imports = 0;
  /** Time spent in Loro imports (this editor's share of the client work in this process). */
  importMs = 0;
  private readonly inbox: Uint8Array[] = [];
  pushes = 0;
  /** Pushes re-sent after a transport failure. */
  retries = 0;
  readonly pushRtt: number[] = [];
  /** Called after every imported stream message. */
  onImport: ((editor: Editor) => void) | null = null;

  constructor(
    private readonly client: Client,
    readonly index: number,
    readonly noteId: string,
  ) {
    this.doc.setPeerId(index + 1);
    this.peer = `${index + 1}`;
  }

  get text(): string {
    return this.doc.getText(FIELD).toString();
  }

  /** This editor's own op counter (everything it typed). */
  get ownOps(): number {
    return this.doc.oplogVersion().get(this.peer) ?? 0;
  }

  open(): void {
    this.subscription = this.client.$crdt.stream.subscribe(
      { model: "Note", id: this.noteId, field: FIELD },
      {
        onData: (message) => {
          // Messages that arrive together are imported together (one importBatch on the next
          // turn of the event loop): 50 editors' imports share this process with the server.
          this.inbox.push(unb64(message.update));
          if (this.inbox.length === 1) setImmediate(() => this.drain());
        },
        onError: (error) => this.errors.push(error),
      },
    );
  }

  private drain(): void {
    const batch = this.inbox.splice(0);
    if (batch.length === 0) return;
    const t0 = now();
    if (batch.length === 1) this.doc.import(batch[0]!);
    else this.doc.importBatch(batch);
    this.importMs += now() - t0;
    this.messages += batch.length;
    this.imports += 1;
    this.onImport?.(this);
  }

  close(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
  }

  /** One character at a random position, committed; returns the keystroke. */
  type(rnd: () => number, at = now()): Keystroke {
    const text = this.doc.getText(FIELD);
    const char = String.fromCharCode(97 + Math.floor(rnd() * 26));
    text.insert(Math.floor(rnd() * (text.length + 1)), char);
    this.doc.commit();
    return { counter: this.ownOps, at };
  }

  /** Sends every own operation not yet acknowledged, one push at a time; resolves when all are. */
  flush(): Promise<void> {
    this.pushing ??= (async () => {
      try {
        for (;;) {
          const to = this.ownOps;
          if (to <= this.acked) return;
          const update = this.doc.export({ mode: "updates-in-range", spans: [{ id: { peer: this.peer, counter: this.acked }, len: to - this.acked }] });
          const t0 = now();
          for (let attempt = 1; ; attempt++) {
            try {
              await this.client.$crdt.push.mutate({ model: "Note", id: this.noteId, field: FIELD, update: b64(update) });
              break;
            } catch (error) {
              // A transport failure (no tRPC error code: the HTTP connection dropped) is retried,
              // as the real client does; a push repeated is harmless (imports are idempotent).
              const transport = error instanceof TRPCClientError && !(error.data as { code?: string } | undefined)?.code;
              if (!transport || attempt >= 5) throw error;
              this.retries += 1;
              await sleep(20);
            }
          }
          this.pushRtt.push(now() - t0);
          this.pushes += 1;
          this.acked = to;
        }
      } finally {
        this.pushing = null;
      }
    })();
    return this.pushing;
  }

  get idle(): boolean {
    return this.pushing === null;
  }
}

/** An error with its causes (a tRPC client error wraps the fetch error, which wraps the socket's). */
function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && e !== null && parts.length < 4; e = (e as { cause?: unknown }).cause) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
  return parts.join(" <- ");
}

async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number, fatal?: () => unknown): Promise<number> {
  const start = now();
  for (;;) {
    const failure = fatal?.();
    if (failure) throw new Error(`crdt bench: failed while waiting for ${what}: ${describe(failure)}`);
    if (await condition()) return now() - start;
    if (now() - start > timeoutMs) throw new Error(`crdt bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

interface Setup {
  users: number;
  store: AppStore;
  server: TetherServer;
  app: ReturnType<typeof buildApp>;
  clients: Client[];
  close(): Promise<void>;
}

const userId = (i: number) => `u${i}`;

/**
 * `users`: EDITORS (each editor its own user: the stream hub checks readability once per user
 * and change, so 50 policy-scoped reads per push) or 1 (every editor signed in as the same
 * user: one check per push — to show what those checks cost).
 */
async function setUp(engine: Engine, users: number, notes: string[]): Promise<Setup> {
  const made = await createTestStore(engine);
  const store = made.store;
  await store.db.user.createMany({ data: Array.from({ length: EDITORS }, (_, i) => ({ id: userId(i), email: `${userId(i)}@bench`, name: `Editor ${i}` })) });
  for (const note of notes) {
    await store.db.project.create({ data: { id: note, name: note, ownerId: userId(0) } });
    await store.db.projectMember.createMany({ data: Array.from({ length: EDITORS - 1 }, (_, i) => ({ projectId: note, userId: userId(i + 1) })) });
    await store.db.note.create({ data: { id: note, projectId: note, body: "" } });
  }
  const app = buildApp(store);
  const server = await createTetherServer({
    router: app.router,
    createContext: userFromRequest,
    port: 0,
    closeGraceMs: 100,
  });
  const connections = Array.from({ length: EDITORS }, (_, i) => connect(server, userId(i % users)));
  return {
    users,
    store,
    server,
    app,
    clients: connections.map((c) => c.client),
    async close() {
      for (const c of connections) c.close();
      await server.close();
      await app.tether.close();
      await made.close();
    },
  };
}

/** Opens every editor's stream on `noteId` and waits for each one's first (catch-up) message. */
async function openEditors(setup: Setup, noteId: string): Promise<Editor[]> {
  const editors = setup.clients.map((client, i) => new Editor(client, i, noteId));
  for (const e of editors) e.open();
  await waitUntil(`${EDITORS} streams' first messages`, () => editors.every((e) => e.messages > 0), 60_000, () => editors.flatMap((e) => e.errors)[0]);
  return editors;
}

/**
 * Waits until every editor holds every editor's operations, then checks that all texts and the
 * projected column are identical. Returns how long the wait took.
 */
async function converge(setup: Setup, editors: Editor[], noteId: string, timeoutMs: number): Promise<{ waitMs: number; textLength: number }> {
  await waitUntil("every push to be acknowledged", () => editors.every((e) => e.idle), timeoutMs, () => editors.flatMap((e) => e.errors)[0]);
  const expected = new Map(editors.map((e) => [e.peer, e.ownOps]));
  const holdsAll = (e: Editor) => {
    const vv = e.doc.oplogVersion();
    for (const [peer, counter] of expected) if ((vv.get(peer) ?? 0) < counter) return false;
    return true;
  };
  const waitMs = await waitUntil("every editor to hold every edit", () => editors.every(holdsAll), timeoutMs, () => editors.flatMap((e) => e.errors)[0]);
  const text = editors[0]!.text;
  const differing = editors.filter((e) => e.text !== text);
  if (differing.length > 0) {
    throw new Error(`crdt bench: ${differing.length} editors' texts differ from editor 0's after converging (e.g. editor ${differing[0]!.index})`);
  }
  const version0 = editors[0]!.doc.oplogVersion();
  const otherVersion = editors.find((e) => e.doc.oplogVersion().compare(version0) !== 0);
  if (otherVersion) throw new Error(`crdt bench: editor ${otherVersion.index} ended on another version than editor 0`);
  // The column is written in the push's transaction: it must hold the final text now.
  const body = (await setup.store.db.note.findUnique({ where: { id: noteId } }))?.body;
  if (body !== text) {
    throw new Error(`crdt bench: Note.body (${body?.length ?? "missing"} chars) differs from the editors' text (${text.length} chars)`);
  }
  return { waitMs, textLength: text.length };
}

async function throughput(setup: Setup, engine: Engine, size: Sizes): Promise<BenchResult> {
  const noteId = "throughput";
  const editors = await openEditors(setup, noteId);
  const stats0 = setup.app.tether.crdt.stats();
  try {
    // Warm-up: one push per editor, everyone caught up.
    await Promise.all(editors.map((e, i) => (e.type(random(1000 + i)), e.flush())));
    await converge(setup, editors, noteId, size.convergeTimeoutMs);
    for (const e of editors) e.pushRtt.length = 0;

    const durationMs = size.throughputSeconds * 1000;
    const importMs0 = editors.reduce((n, e) => n + e.importMs, 0);
    const meter = resourceMeter();
    const start = now();
    const end = start + durationMs;
    let inWindow = 0;
    let total = 0;
    const loops = editors.map(async (e, i) => {
      const rnd = random(i + 1);
      while (now() < end) {
        e.type(rnd);
        await e.flush();
        total += 1;
        if (now() <= end) inWindow += 1;
      }
    });
    await Promise.all(loops);
    const lastAck = now();
    const result = await converge(setup, editors, noteId, size.convergeTimeoutMs);
    const resources = meter.stop();
    const stats1 = setup.app.tether.crdt.stats();
    const rtt = summarize(editors.flatMap((e) => e.pushRtt));
    const perEditor = editors.map((e) => e.pushRtt.length).sort((a, b) => a - b);
    return {
      suite: SUITE,
      scenario: `throughput: ${EDITORS} editors (${setup.users} user${setup.users === 1 ? "" : "s"}), 1 char/push, closed loop`,
      engine,
      editors: EDITORS,
      users: setup.users,
      seconds: size.throughputSeconds,
      pushesAcked: total,
      pushesPerSec: round((inWindow / durationMs) * 1000, 1),
      pushRttP50Ms: rtt.p50,
      pushRttP99Ms: rtt.p99,
      pushRttMaxMs: rtt.max,
      minPushesPerEditor: perEditor[0],
      maxPushesPerEditor: perEditor[perEditor.length - 1],
      drainMs: round(lastAck - end + result.waitMs),
      converged: true,
      textLength: result.textLength,
      compactions: stats1.compactions - stats0.compactions,
      hubReloads: stats1.reloads - stats0.reloads,
      pushRetries: editors.reduce((n, e) => n + e.retries, 0),
      cpuPercent: resources.cpuPercent,
      clientImportCpuPct: round(((editors.reduce((n, e) => n + e.importMs, 0) - importMs0) / resources.wallMs) * 100, 1),
    };
  } finally {
    for (const e of editors) e.close();
  }
}

const latencyNote = (perEditor: number) => `latency-${perEditor}`;

async function latency(setup: Setup, engine: Engine, size: Sizes, perEditor: number): Promise<BenchResult> {
  const noteId = latencyNote(perEditor);
  const editors = await openEditors(setup, noteId);
  try {
    await Promise.all(editors.map((e, i) => (e.type(random(2000 + i)), e.flush())));
    await converge(setup, editors, noteId, size.convergeTimeoutMs);
    for (const e of editors) e.pushRtt.length = 0;
    const pushes0 = editors.reduce((n, e) => n + e.pushes, 0);

    // Per sender, its keystrokes in order; per receiver, how many of each sender's it has seen.
    const sent: Keystroke[][] = editors.map(() => []);
    const seen: number[][] = editors.map(() => editors.map(() => 0));
    const samples: number[] = [];
    const peers = editors.map((e) => e.peer);
    const onImport = (receiver: Editor) => {
      const t = now();
      const vv = receiver.doc.oplogVersion().toJSON();
      const mine = seen[receiver.index]!;
      for (let s = 0; s < editors.length; s++) {
        if (s === receiver.index) continue;
        const keys = sent[s]!;
        let k = mine[s]!;
        if (k >= keys.length) continue;
        const has = vv.get(peers[s]!) ?? 0;
        while (k < keys.length && keys[k]!.counter <= has) {
          samples.push(t - keys[k]!.at);
          k += 1;
        }
        mine[s] = k;
      }
    };
    for (const e of editors) e.onImport = onImport;

    const totalRate = EDITORS * perEditor;
    const total = Math.round(totalRate * size.latencySeconds);
    const intervalMs = 1000 / totalRate;
    const rnds = editors.map((_, i) => random(3000 + i));
    const importMs0 = editors.reduce((n, e) => n + e.importMs, 0);
    const meter = resourceMeter();
    let maxSlipMs = 0;
    let slipSum = 0;
    const start = now();
    for (let n = 0; n < total; n++) {
      // Keystroke n is editor n mod 50's: each editor types every 50 intervals (500 ms at 100/s).
      const due = start + n * intervalMs;
      const wait = due - now();
      if (wait > 0.5) await sleep(Math.floor(wait));
      const t = now();
      const slip = Math.max(0, t - due);
      maxSlipMs = Math.max(maxSlipMs, slip);
      slipSum += slip;
      const i = n % EDITORS;
      const e = editors[i]!;
      sent[i]!.push(e.type(rnds[i]!, t));
      void e.flush().catch((error: unknown) => e.errors.push(error));
    }
    const typingMs = now() - start;
    const result = await converge(setup, editors, noteId, size.convergeTimeoutMs);
    const resources = meter.stop();
    for (const e of editors) onImport(e);

    const pairs = total * (EDITORS - 1);
    if (samples.length !== pairs) throw new Error(`crdt bench: ${samples.length} of ${pairs} (keystroke, receiver) deliveries observed`);
    const l = summarize(samples);
    const rtt = summarize(editors.flatMap((e) => e.pushRtt));
    const pushes = editors.reduce((n, e) => n + e.pushes, 0) - pushes0;
    return {
      suite: SUITE,
      scenario: `keystroke→others @${totalRate}/s (${perEditor}/s per editor), ${EDITORS} editors (${setup.users} user${setup.users === 1 ? "" : "s"})`,
      engine,
      editors: EDITORS,
      users: setup.users,
      seconds: size.latencySeconds,
      keystrokes: total,
      achievedPerSec: round((total / typingMs) * 1000, 1),
      meanSlipMs: round(slipSum / total),
      maxSlipMs: round(maxSlipMs),
      pairs: samples.length,
      p50Ms: l.p50,
      p99Ms: l.p99,
      maxMs: l.max,
      pushes,
      keystrokesPerPush: round(total / Math.max(1, pushes), 2),
      pushRttP50Ms: rtt.p50,
      pushRttP99Ms: rtt.p99,
      pushRetries: editors.reduce((n, e) => n + e.retries, 0),
      converged: true,
      textLength: result.textLength,
      cpuPercent: resources.cpuPercent,
      clientImportCpuPct: round(((editors.reduce((n, e) => n + e.importMs, 0) - importMs0) / resources.wallMs) * 100, 1),
    };
  } finally {
    for (const e of editors) e.close();
  }
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const size = sizes(options.quick);
  const results: BenchResult[] = [];
  const log = (row: BenchResult) => {
    console.error(
      `crdt ${row.engine} ${row.scenario}: ` +
        (row.pushesPerSec !== undefined
          ? `${row.pushesPerSec} pushes/s, push p50 ${row.pushRttP50Ms} ms p99 ${row.pushRttP99Ms} ms, drain ${row.drainMs} ms`
          : `p50 ${row.p50Ms} ms p99 ${row.p99Ms} ms max ${row.maxMs} ms, push p50 ${row.pushRttP50Ms} ms, ${row.keystrokesPerPush} keys/push`),
    );
    results.push(row);
  };
  for (const engine of options.engines) {
    // Each editor its own user: throughput, then keystroke latency at each rate.
    const setup = await setUp(engine, EDITORS, ["throughput", ...size.keystrokesPerEditorPerSec.map(latencyNote)]);
    try {
      log(await throughput(setup, engine, size));
      for (const perEditor of size.keystrokesPerEditorPerSec) log(await latency(setup, engine, size, perEditor));
    } finally {
      await setup.close();
    }
    // Every editor the same user (one readability check per change instead of 50): throughput only.
    const shared = await setUp(engine, 1, ["throughput"]);
    try {
      log(await throughput(shared, engine, size));
    } finally {
      await shared.close();
    }
  }
  return results;
}
