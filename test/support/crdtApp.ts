// What the CRDT tests and the CRDT bench share: an app with a collaborative Note under policies
// (read: the project's owner and members; write: the same, except the read-only user "carol"),
// presence rooms `note:<id>` for the note's readers, owner-only membership mutations, tRPC
// clients over WebSocket + HTTP batch, a raw loro-crdt peer, a seeded random sequence.
import { TRPCClientError } from "@trpc/client";
import { TRPCError } from "@trpc/server";
import { LoroDoc, VersionVector } from "loro-crdt";
import { z } from "zod";
import {
  createStore,
  initTether,
  migrate,
  type ChangeFeed,
  type CrdtOptions,
  type Policies,
  type PolicyDb,
  type PresenceOptions,
  type RateLimitOptions,
} from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { schema } from "../../generated/tether/index.ts";
import { createTestDatabase, type AppStore } from "./databases.ts";
import { connectAs, userFromRequest } from "./userClient.ts";

export { random } from "./random.ts";

export interface Ctx {
  user: { id: string } | null;
}

/** Can `userId` see project `projectId`: its owner or a member. */
const access = (userId: string) => ({ OR: [{ ownerId: userId }, { members: { some: { userId } } }] });

/** Tests can hold every note update-policy check (write verdicts of pushes) on a promise of theirs. */
export const notePolicyHooks: { beforeUpdateCheck: (() => Promise<void>) | null } = { beforeUpdateCheck: null };

const policies: Policies<PrismaClient, Ctx> = {
  note: {
    read: (ctx) => (ctx.user ? { project: access(ctx.user.id) } : false),
    // Carol may read but never write; other readers may write.
    update: async (ctx, row) => {
      await notePolicyHooks.beforeUpdateCheck?.();
      return !!ctx.user && ctx.user.id !== "carol" && (await ctx.db.project.count({ where: { id: row.projectId, ...access(ctx.user.id) } })) > 0;
    },
    create: () => true,
    delete: () => true,
  },
};

/**
 * Room `note:<id>` is open to whoever may read that note. Read through `ctx.db` (policy-scoped,
 * read-tracked): when a membership it depended on goes, the join ends.
 */
const presence: PresenceOptions<Ctx, PolicyDb<PrismaClient>> = {
  authorize: async (ctx, room) => {
    const id = /^note:(.+)$/.exec(room)?.[1];
    return !!ctx.user && !!id && (await ctx.db.note.count({ where: { id } })) > 0;
  },
};

const membership = z.object({ projectId: z.string(), userId: z.string() });

export function buildCrdtApp(store: AppStore, crdt: CrdtOptions = {}, feed?: ChangeFeed, rate?: RateLimitOptions<Ctx>) {
  const tether = initTether<Ctx>().create({ store, schema, policies, crdt, feed, presence, ...(rate ? { limits: { rate } } : {}) });
  /** Only the project's owner shares it (FORBIDDEN otherwise). */
  const owner = tether.mutation.use(async ({ ctx, getRawInput, next }) => {
    const { projectId } = membership.parse(await getRawInput());
    // Through the mutation's transaction (PGlite has one connection: another client would wait on it).
    const owned = await ctx.db.project.count({ where: { id: projectId, ownerId: ctx.user?.id ?? "" } });
    if (!owned) throw new TRPCError({ code: "FORBIDDEN", message: "only the owner shares a project" });
    return next();
  });
  const router = tether.appRouter({
    members: tether.router({
      add: owner.input(membership).mutation(({ ctx, input }) => ctx.db.projectMember.create({ data: input })),
      remove: owner.input(membership).mutation(({ ctx, input }) => ctx.db.projectMember.deleteMany({ where: input })),
    }),
    notes: tether.router({
      get: tether.query.input(z.object({ id: z.string() })).query(({ ctx, input }) => ctx.db.note.findFirst({ where: { id: input.id } })),
      setBody: tether.mutation
        .input(z.object({ id: z.string(), body: z.string() }))
        .mutation(({ ctx, input }) => ctx.db.note.update({ where: { id: input.id }, data: { body: input.body } })),
    }),
  });
  return { tether, router };
}
export type CrdtRouter = ReturnType<typeof buildCrdtApp>["router"];

export const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
export const unb64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));


/** A client as `user`: subscriptions over WebSocket, pull/push batched over HTTP. */
export function connect(server: TetherServer, user: string, cleanups: Array<() => unknown>) {
  return connectAs<CrdtRouter>(server, user, cleanups).trpc;
}
export type Client = ReturnType<typeof connect>;

export function serve(router: CrdtRouter): Promise<TetherServer> {
  return createTetherServer({
    router,
    createContext: userFromRequest,
    port: 0,
    closeGraceMs: 100,
  });
}

/**
 * Two nodes on one fresh Postgres database — each its own store, change feed, Tether and server —
 * seeded with alice's project p1, shared with bob, and its note n1. `close` ends it all.
 */
export async function startTwoNodes(crdt: CrdtOptions = {}) {
  const database = await createTestDatabase("postgres");
  const stores = await Promise.all([0, 1].map(() => createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: database.url })));
  const apps: Array<ReturnType<typeof buildCrdtApp>> = [];
  const servers: TetherServer[] = [];
  const close = async () => {
    for (const server of servers) await server.close();
    for (const app of apps) await app.tether.close();
    for (const store of stores) await store.close();
    await database.drop();
  };
  try {
    await migrate({ sql: stores[0]!.sql, migrationsDir: "prisma/migrations" });
    const db = stores[0]!.db;
    await db.user.createMany({ data: ["alice", "bob"].map((id) => ({ id, email: `${id}@x`, name: id })) });
    await db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
    await db.projectMember.create({ data: { projectId: "p1", userId: "bob" } });
    await db.note.create({ data: { id: "n1", projectId: "p1", body: "" } });
    for (const store of stores) apps.push(buildCrdtApp(store, crdt));
    for (const app of apps) servers.push(await serve(app.router));
  } catch (error) {
    await close();
    throw error;
  }
  return { stores, apps, servers, close };
}

/**
 * A peer using loro-crdt directly: its own LoroDoc, `$crdt.stream` from its version, pushes of
 * what it has not pushed yet. Offline = stream closed and no pushes; edits stay local.
 */
export class Peer {
  readonly doc = new LoroDoc();
  private pushed = new VersionVector(null);
  private subscription: { unsubscribe(): void } | null = null;
  readonly errors: unknown[] = [];
  messages = 0;
  ended = false;

  constructor(
    private readonly client: Client,
    readonly id: string,
    readonly field = "body",
  ) {}

  get text(): string {
    return this.doc.getText(this.field).toString();
  }

  open(): void {
    const version = this.doc.oplogVersion();
    this.subscription = this.client.$crdt.stream.subscribe(
      { model: "Note", id: this.id, field: this.field, version: version.length() > 0 ? b64(version.encode()) : undefined },
      {
        onData: (message) => {
          this.doc.import(unb64(message.update));
          this.messages += 1;
        },
        onError: (error) => this.errors.push(error),
        onComplete: () => (this.ended = true),
      },
    );
  }

  close(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
  }

  async push(): Promise<void> {
    const at = this.doc.oplogVersion();
    const update = this.doc.export({ mode: "update", from: this.pushed });
    await this.client.$crdt.push.mutate({ model: "Note", id: this.id, field: this.field, update: b64(update) });
    this.pushed = at;
  }
}


export async function trpcCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TRPCClientError) return String((error.data as { code?: string } | undefined)?.code);
    throw error;
  }
  return "OK";
}

