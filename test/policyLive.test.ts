// Open live queries follow the read policy as its answer changes, both ways. The note's rule
// (the README's shape) looks up the caller's projects through `ctx.db` and answers `false` when
// there are none: those lookups are recorded in the live query's ReadSet even when the answer is
// `false`, so a membership change re-runs it. A member the owner removes sees the empty result at
// once and nothing the owner writes afterwards (proven by a barrier write that reaches the owner);
// a caller the owner adds starts seeing the rows. Real server, WebSocket, both engines.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { applyListPatch, type LiveMessage } from "@tether/protocol";
import { initTether, type Policies } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { schema } from "../generated/tether/index.ts";
import type { Ctx } from "./support/crdtApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { connectAs, userFromRequest } from "./support/userClient.ts";
import { readSharedNotes } from "./support/notePolicy.ts";
import { waitFor } from "./support/waitFor.ts";

const policies: Policies<PrismaClient, Ctx> = {
  note: {
    read: readSharedNotes,
    update: () => true,
  },
};

function buildApp(store: AppStore) {
  const tether = initTether<Ctx>().create({ store, schema, policies });
  const router = tether.appRouter({
    notes: tether.query.query(({ ctx }) => ctx.db.note.findMany({ orderBy: { id: "asc" } })),
    noteById: tether.query.input(z.object({ id: z.string() })).query(({ ctx, input }) => ctx.db.note.findFirst({ where: { id: input.id } })),
    removeMember: tether.mutation.input(z.object({ userId: z.string() })).mutation(({ ctx, input }) => ctx.db.projectMember.deleteMany({ where: { projectId: "p1", userId: input.userId } })),
    addMember: tether.mutation.input(z.object({ userId: z.string() })).mutation(({ ctx, input }) => ctx.db.projectMember.create({ data: { projectId: "p1", userId: input.userId } })),
    writeNote: tether.mutation.input(z.object({ body: z.string() })).mutation(({ ctx, input }) => ctx.db.note.update({ where: { id: "n1" }, data: { body: input.body }, select: { id: true } })),
  });
  return { tether, router };
}
type Router = ReturnType<typeof buildApp>["router"];

/** A `$live` subscription's value as a client keeps it (full messages and list patches), and every message. */
interface LiveView {
  value: unknown;
  messages: unknown[];
  error: unknown;
}

describe.each(engines)("live queries follow the read policy on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let app: ReturnType<typeof buildApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    closeStore = made.close;
    app = buildApp(store);
    server = await createTetherServer({ router: app.router, createContext: userFromRequest, port: 0, closeGraceMs: 100 });
  });
  afterAll(async () => {
    await server.close();
    await app.tether.close();
    await closeStore();
  });
  // Olive owns p1 and shares it with mia; sam is a stranger. n1 is p1's note.
  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Note", "ProjectMember", "Task", "Project", "User" CASCADE`);
    await store.db.user.createMany({ data: ["olive", "mia", "sam"].map((id) => ({ id, email: `${id}@x`, name: id })) });
    await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "olive" } });
    await store.db.projectMember.create({ data: { id: "m1", projectId: "p1", userId: "mia" } });
    await store.db.note.create({ data: { id: "n1", projectId: "p1", body: "before" } });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function live(user: string, path: "notes" | "noteById", input: unknown) {
    const { trpc } = connectAs<Router>(server, user, cleanups);
    const view: LiveView = { value: undefined, messages: [], error: undefined };
    const subscription = trpc.$live.subscribe(
      { path, input },
      {
        onData: (envelope) => {
          const message = (envelope as { data: LiveMessage }).data;
          view.messages.push(message);
          if (message.kind === "full") view.value = message.data;
          else if (message.kind === "patch") view.value = applyListPatch(view.value as Record<string, unknown>[], message.patch);
        },
        onError: (error) => (view.error = error),
      },
    );
    cleanups.push(() => subscription.unsubscribe());
    return { trpc, view };
  }
  const bodies = (value: unknown) => (Array.isArray(value) ? value : value ? [value] : []).map((n) => (n as { body: string }).body);

  it("a removed member's open $live of the note list and of the note go empty, and show nothing written afterwards", async () => {
    const owner = live("olive", "notes", undefined);
    const list = live("mia", "notes", undefined);
    const one = live("mia", "noteById", { id: "n1" });
    await waitFor("every subscriber sees the note", () => [owner, list, one].every((s) => bodies(s.view.value).join() === "before"));

    await owner.trpc.removeMember.mutate({ userId: "mia" });
    await waitFor("the removed member's results are empty", () => bodies(list.view.value).length === 0 && one.view.value === null, {
      fatal: () => list.view.error ?? one.view.error,
    });
    const seenBefore = list.view.messages.length + one.view.messages.length;

    // The barrier: the owner's write reaches the owner's subscription; the member saw none of it.
    await owner.trpc.writeNote.mutate({ body: "after" });
    await waitFor("the owner sees the barrier write", () => bodies(owner.view.value).join() === "after");
    await owner.trpc.writeNote.mutate({ body: "later" });
    await waitFor("the owner sees the second write", () => bodies(owner.view.value).join() === "later");
    expect(JSON.stringify([list.view.messages, one.view.messages])).not.toMatch(/after|later/);
    expect([bodies(list.view.value), one.view.value]).toEqual([[], null]);
    // Empty results re-run to empty again are not resent.
    expect(list.view.messages.length + one.view.messages.length).toBe(seenBefore);
  });

  it("a caller whose policy answered false starts seeing the rows once added as a member", async () => {
    const list = live("sam", "notes", undefined);
    const one = live("sam", "noteById", { id: "n1" });
    await waitFor("the stranger's first answers", () => list.view.value !== undefined && one.view.value !== undefined);
    expect([list.view.value, one.view.value]).toEqual([[], null]);

    await live("olive", "notes", undefined).trpc.addMember.mutate({ userId: "sam" });
    await waitFor("the new member sees the note in both queries", () => bodies(list.view.value).join() === "before" && bodies(one.view.value).join() === "before", {
      fatal: () => list.view.error ?? one.view.error,
    });
  });
});
