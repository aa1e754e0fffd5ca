/**
 * The red team's own small app for attacking workflows through the public API only: a store on
 * either engine, better-auth, a handful of workflows whose steps report to a probe, mutations that
 * start runs and send events (some then throw, to roll back), and a real server over a socket.
 */
import { appendFileSync } from "node:fs";
import { z } from "zod";
import { TRPCError } from "@trpc/server";
import { createStore, createTetherAuth, initTether, migrate, type AuthContext, type Engine } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { schema } from "../../generated/tether/index.ts";

/** What steps did, as seen from outside: counts per `${runId}:${step}`, plus latches tests release. */
export class Probe {
  readonly runs = new Map<string, number>();
  readonly latches = new Map<string, { promise: Promise<void>; release: () => void }>();
  readonly aborted = new Set<string>();
  /** When set, step effects are also appended here (one JSON line each) so child processes can report. */
  logFile: string | undefined = process.env.REDWF_LOG;
  /** Name the `changing` workflow gives its first step: tests change it between replays. */
  version = "v1";

  hit(runId: string, step: string): number {
    const key = `${runId}:${step}`;
    const n = (this.runs.get(key) ?? 0) + 1;
    this.runs.set(key, n);
    if (this.logFile) appendFileSync(this.logFile, `${JSON.stringify({ runId, step, n, pid: process.pid, at: Date.now() })}\n`);
    return n;
  }
  count(runId: string, step: string): number {
    return this.runs.get(`${runId}:${step}`) ?? 0;
  }
  /** A restarted node's latches are open from the start. */
  autoRelease = process.env.REDWF_RELEASE === "1";
  latch(key: string): Promise<void> {
    if (this.autoRelease) return Promise.resolve();
    let entry = this.latches.get(key);
    if (!entry) {
      let release!: () => void;
      const promise = new Promise<void>((resolve) => (release = resolve));
      entry = { promise, release };
      this.latches.set(key, entry);
    }
    return entry.promise;
  }
  release(key: string): void {
    void this.latch(key);
    this.latches.get(key)!.release();
  }
}

const runInput = z.object({ tag: z.string().default("") });

export interface AppOptions {
  engine: Engine;
  url?: string;
  dataDir?: string;
  probe?: Probe;
  port?: number;
  /** Migrate on start (the first node does; others may too: idempotent). */
  migrate?: boolean;
  serve?: boolean;
  concurrency?: number;
}

export async function buildApp(options: AppOptions) {
  const probe = options.probe ?? new Probe();
  const store = await createStore({
    prisma: (adapter) => new PrismaClient({ adapter }),
    url: options.url,
    dataDir: options.dataDir,
    reconnect: { initialDelayMs: 20, maxDelayMs: 500 },
  });
  if (options.migrate !== false) await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
  const auth = createTetherAuth({ store, schema, secret: "redteam-workflows-secret-0123456789abcdef0123" });
  const tether = initTether<AuthContext>().create({
    store,
    schema,
    auth,
    limits: { rate: false },
    workflows: { limits: { concurrency: options.concurrency ?? 8 } },
  });
  const wf = tether.workflow;

  const workflows = tether.workflows({
    // Two plain steps, then done.
    steps: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      const a = await step.run("a", () => probe.hit(id, "a"));
      const b = await step.run("b", () => probe.hit(id, "b"));
      return { a, b };
    }),
    // One step, a wait for "go", one more step with the payload.
    // (A string timeout is Number(...) of it: NaN and Infinity do not survive JSON or zod numbers.)
    gate: wf.input(z.object({ timeout: z.union([z.number(), z.string()]).optional(), tag: z.string().default("") })).run(async ({ step, input, ctx }) => {
      const id = runIdOf(ctx);
      await step.run("before", () => probe.hit(id, "before"));
      const timeout = typeof input.timeout === "string" ? Number(input.timeout) : input.timeout;
      const payload = await step.waitForEvent<{ n: number }>("go", timeout === undefined ? {} : { timeout });
      await step.run("after", () => probe.hit(id, "after"));
      return { payload };
    }),
    // Two waits for events of different names.
    twoEvents: wf.input(runInput).run(async ({ step }) => {
      const first = await step.waitForEvent<{ n: number }>("e1");
      const second = await step.waitForEvent<{ n: number }>("e2");
      return { first, second };
    }),
    // A durable sleep between two steps.
    sleeper: wf.input(z.object({ ms: z.union([z.number(), z.string()]) })).run(async ({ step, input, ctx }) => {
      const id = runIdOf(ctx);
      const started = await step.run("start", () => { probe.hit(id, "start"); return Date.now(); });
      await step.sleep("nap", Number(input.ms));
      const woke = await step.run("after", () => { probe.hit(id, "after"); return Date.now(); });
      return { started, woke };
    }),
    until: wf.input(z.object({ at: z.union([z.number(), z.string()]) })).run(async ({ step, input, ctx }) => {
      const id = runIdOf(ctx);
      await step.sleepUntil("until", new Date(Number(input.at)));
      await step.run("after", () => probe.hit(id, "after"));
      return "ok";
    }),
    // A step that blocks on a latch the test releases (or aborts through its signal).
    blocker: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      await step.run("block", async ({ signal }) => {
        probe.hit(id, "block");
        await Promise.race([
          probe.latch(`${id}:block`),
          new Promise<void>((_, reject) => signal.addEventListener("abort", () => { probe.aborted.add(id); reject(new Error("aborted")); })),
        ]);
        return 1;
      });
      await step.run("after", () => probe.hit(id, "after"));
      return "done";
    }),
    // Steps returning / throwing odd values, chosen by input.kind.
    weird: wf.input(z.object({ kind: z.string() })).run(async ({ step, input, ctx }) => {
      const id = runIdOf(ctx);
      const value = await step.run("odd", () => {
        probe.hit(id, "odd");
        return oddValue(input.kind);
      });
      await step.run("after", () => probe.hit(id, "after"));
      return { value: value as unknown };
    }),
    // A body returning odd values.
    weirdOutput: wf.input(z.object({ kind: z.string() })).run(async ({ input }) => oddValue(input.kind) as unknown as string),
    // The same step name twice.
    dup: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      await step.run("same", () => probe.hit(id, "same-1"));
      await step.run("same", () => probe.hit(id, "same-2"));
      return "dup finished";
    }),
    // Its first step's name comes from the probe: changed between replays by tests.
    changing: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      await step.run(`first-${probe.version}`, () => probe.hit(id, `first-${probe.version}`));
      await step.waitForEvent("go");
      await step.run("last", () => probe.hit(id, "last"));
      return probe.version;
    }),
    // The kind changes between replays: a step.run before, a sleep after.
    changingKind: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      if (probe.version === "v1") await step.run("x", () => probe.hit(id, "x"));
      else await step.sleep("x", 10);
      await step.waitForEvent("go");
      return probe.version;
    }),
    // Steps in Promise.all, then a wait, then one more.
    parallel: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      const results = await Promise.all(
        [30, 5, 15].map((ms, i) => step.run(`p${i}`, async () => { probe.hit(id, `p${i}`); await new Promise((r) => setTimeout(r, ms)); return i; })),
      );
      await step.waitForEvent("go");
      await step.run("after", () => probe.hit(id, "after"));
      return results;
    }),
    // For kills: dies between steps or inside one when the environment says so (first attempt only).
    crashy: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      await step.run("a", () => probe.hit(id, "a"));
      if (process.env.REDWF_DIE === "between") process.kill(process.pid, "SIGKILL");
      await step.run("b", ({ attempt }) => {
        probe.hit(id, `b#${attempt}`);
        if (process.env.REDWF_DIE === "inside") process.kill(process.pid, "SIGKILL");
        return attempt;
      });
      await step.run("c", () => probe.hit(id, "c"));
      return "crashy done";
    }),
    // A step that throws: the body catches it and runs another.
    catcher: wf.input(runInput).run(async ({ step, ctx }) => {
      const id = runIdOf(ctx);
      let caught = "none";
      try {
        await step.run("boom", () => { probe.hit(id, "boom"); throw new Error("boom!"); });
      } catch (error) {
        caught = error instanceof Error ? error.constructor.name + ":" + error.message : String(error);
      }
      await step.run("after", () => probe.hit(id, "after"));
      return caught;
    }),
  });

  const { mutation } = tether.withWorkflows(workflows);
  const authed = mutation.use(tether.authed);
  // Untyped doors for attacks (names and inputs that would not compile through the typed client).
  type Loose = { start(name: string, input: unknown, options?: unknown): Promise<unknown>; sendEvent(id: string, name: string, payload?: unknown): Promise<unknown> };
  const loose = (ctx: { workflows: unknown }) => ctx.workflows as Loose;
  const router = tether.appRouter({
    workflows,
    start: authed
      .input(z.object({ name: z.string(), input: z.unknown(), id: z.unknown().optional(), fail: z.boolean().default(false) }))
      .mutation(async ({ ctx, input }) => {
        const id = await loose(ctx).start(input.name, input.input, input.id === undefined ? undefined : { id: input.id });
        if (input.fail) throw new TRPCError({ code: "CONFLICT", message: "rolled back on purpose" });
        return id as string;
      }),
    startTwice: authed.input(z.object({ id: z.string() })).mutation(async ({ ctx, input }) => {
      const a = await ctx.workflows.start("steps", { tag: "x" }, { id: input.id });
      const b = await ctx.workflows.start("steps", { tag: "y" }, { id: input.id });
      return [a, b];
    }),
    send: authed
      .input(z.object({ id: z.string(), name: z.string(), payload: z.unknown().optional(), fail: z.boolean().default(false), times: z.number().default(1) }))
      .mutation(async ({ ctx, input }) => {
        const results: unknown[] = [];
        for (let i = 0; i < input.times; i++) results.push(await loose(ctx).sendEvent(input.id, input.name, input.payload));
        if (input.fail) throw new TRPCError({ code: "CONFLICT", message: "rolled back on purpose" });
        return results as unknown as string[];
      }),
    startAndSend: authed.input(z.object({ id: z.string(), n: z.number() })).mutation(async ({ ctx, input }) => {
      await ctx.workflows.start("gate", {}, { id: input.id });
      await ctx.workflows.sendEvent(input.id, "go", { n: input.n });
      return input.id;
    }),
    // Values built on the server, past what the transport would let a client send.
    startBig: authed.input(z.object({ id: z.string() })).mutation(({ ctx, input }) => ctx.workflows.start("steps", { tag: "x".repeat(1_100_000) }, { id: input.id })),
    sendBig: authed.input(z.object({ id: z.string() })).mutation(({ ctx, input }) => ctx.workflows.sendEvent(input.id, "go", { n: 1, pad: "x".repeat(1_100_000) })),
    sendOdd: authed.input(z.object({ id: z.string(), kind: z.string() })).mutation(async ({ ctx, input }) => {
      await loose(ctx).sendEvent(input.id, "go", oddValue(input.kind));
      return "sent";
    }),
    anonStart: mutation.input(z.object({ id: z.string() })).mutation(({ ctx, input }) => ctx.workflows.start("steps", { tag: "anon" }, { id: input.id })),
  });

  const server = options.serve === false
    ? undefined
    : await createTetherServer({ router, createContext: (opts) => auth.createContext(opts), port: options.port ?? 0, host: "127.0.0.1", path: "/trpc", extraRoutes: auth.routes });
  await tether.start();

  return {
    store,
    auth,
    tether,
    workflows,
    router,
    probe,
    server,
    url: server ? `http://127.0.0.1:${server.port}` : "",
    async close() {
      await server?.close();
      await tether.close();
      auth.close();
      await store.close();
    },
  };
}

export type RedApp = Awaited<ReturnType<typeof buildApp>>;
export type RedRouter = RedApp["router"];

function runIdOf(ctx: { workflow: { id: string } }): string {
  return ctx.workflow.id;
}

export function oddValue(kind: string): unknown {
  switch (kind) {
    case "undefined": return undefined;
    case "date": return new Date(0);
    case "bigint": return 10n;
    case "nan": return Number.NaN;
    case "cycle": { const o: Record<string, unknown> = {}; o.self = o; return o; }
    case "huge": return "x".repeat(2 * 1024 * 1024);
    case "nul": return "a\u0000b";
    case "surrogate": return "a\ud800b";
    case "function": return () => 1;
    case "map": return new Map([[1, 2]]);
    case "throwString": throw "a string";
    case "throwNull": throw null;
    case "throwUndefined": throw undefined;
    case "throwObject": throw { code: 42 };
    case "throwHuge": throw new Error("e".repeat(100_000));
    case "throwNul": throw new Error("nul\u0000inside");
    default: return kind;
  }
}
