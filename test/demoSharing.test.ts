// The demo's API (apps/demo/src/server/router.ts) on both engines: sharing a project between users,
// with its policies enforced in live queries — a member sees the project and its tasks appear and
// disappear live; nobody else ever does.
import { TRPCError } from "@trpc/server";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { userContext, type SecuredContext } from "./fixtures/securedApp.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { openDemoApp, type DemoApp } from "./support/demoApp.ts";
import { collectLive } from "./support/liveCollector.ts";
import { seedAliceAndBob } from "./support/seed.ts";

const ALICE = userContext("alice");
const BOB = userContext("bob");
const CAROL = userContext("carol");

type ProjectRow = { id: string; name: string; owner: { name: string } };
type TaskRow = { id: string; title: string; done: boolean };

describe.each(engines)("the demo's project sharing on %s", (engine) => {
  let store: AppStore;
  let app: DemoApp["app"];
  let demo: DemoApp;
  const stops: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    demo = await openDemoApp(engine, "demo-sharing-test-secret-0123456789abcdef");
    ({ store, app } = demo);
    await seedAliceAndBob(store, { alice: ["a1", "Alpha"], bob: ["b1", "Bravo"] });
    await store.db.user.create({ data: { id: "carol", email: "carol@example.com", name: "Carol" } });
    // The demo shares by (valid) email address.
    for (const id of ["alice", "bob"]) await store.db.user.update({ where: { id }, data: { email: `${id}@example.com` } });
    await store.db.task.create({ data: { id: "ta1", projectId: "a1", title: "alpha task", position: 0 } });
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await demo.close();
  });

  const caller = (ctx: SecuredContext, signal?: AbortSignal) => app.tether.createCallerFactory(app.router)(ctx, { signal });

  async function live<T>(path: string, input: unknown, ctx: SecuredContext) {
    const controller = new AbortController();
    const stream = await caller(ctx, controller.signal).$live({ path, input });
    const collector = collectLive<T>(stream as AsyncIterable<unknown>, controller);
    stops.push(collector.stop);
    await collector.until(() => collector.state.messages.length > 0);
    return collector;
  }

  const codeOf = async (promise: Promise<unknown>) => {
    try {
      await promise;
      return "OK";
    } catch (error) {
      return error instanceof TRPCError ? error.code : String(error);
    }
  };

  it("a share reaches the member's open lists live; an unshare takes it away again", async () => {
    const bobProjects = await live<ProjectRow[]>("projects.list", undefined, BOB);
    expect(bobProjects.state.data!.map((p) => p.id)).toEqual(["b1"]);
    expect(await codeOf(caller(BOB).projects.get({ id: "a1" }))).toBe("NOT_FOUND");

    await caller(ALICE).projects.share({ projectId: "a1", email: "bob@example.com" });
    await bobProjects.until(() => bobProjects.state.data!.some((p) => p.id === "a1"));
    expect(bobProjects.state.data!.find((p) => p.id === "a1")!.owner.name).toBe("Alice");

    // Bob works in the shared project; Alice sees it live, and the other way round.
    const aliceTasks = await live<TaskRow[]>("tasks.byProject", { projectId: "a1", filter: "open" }, ALICE);
    const bobTasks = await live<TaskRow[]>("tasks.byProject", { projectId: "a1", filter: "all" }, BOB);
    expect(bobTasks.state.data!.map((t) => t.title)).toEqual(["alpha task"]);
    const bobs = await caller(BOB).tasks.add({ projectId: "a1", title: "bob's task" });
    await aliceTasks.until(() => aliceTasks.state.data!.some((t) => t.id === bobs.id));
    await caller(BOB).tasks.setDone({ id: "ta1", done: true });
    await aliceTasks.until(() => aliceTasks.state.data!.map((t) => t.title).join() === "bob's task");
    await caller(ALICE).tasks.add({ projectId: "a1", title: "alice's task" });
    await bobTasks.until(() => bobTasks.state.data!.length === 3);
    const members = await caller(BOB).projects.members({ projectId: "a1" });
    expect(members.map((m) => [m.id, m.role])).toEqual([["alice", "owner"], ["bob", "member"]]);

    // Unshared: Bob's live views drop the project and its tasks; reads say NOT_FOUND.
    await caller(ALICE).projects.unshare({ projectId: "a1", userId: "bob" });
    await bobProjects.until(() => bobProjects.state.data!.map((p) => p.id).join() === "b1");
    await bobTasks.until(() => bobTasks.state.data!.length === 0);
    expect(await codeOf(caller(BOB).projects.get({ id: "a1" }))).toBe("NOT_FOUND");
    // Writing into it: NOT_FOUND too (a project he cannot read answers as a missing one).
    expect(await codeOf(caller(BOB).tasks.add({ projectId: "a1", title: "too late" }))).toBe("NOT_FOUND");
    expect(await store.db.task.count({ where: { title: "too late" } })).toBe(0);
  });

  it("only the owner shares; sharing twice is one membership; nobody else sees anything", async () => {
    // Sharing twice (an upsert on the compound unique, under the policy) keeps one row.
    await caller(ALICE).projects.share({ projectId: "a1", email: "bob@example.com" });
    await caller(ALICE).projects.share({ projectId: "a1", email: "  BOB@Example.com " });
    expect(await store.db.projectMember.count({ where: { projectId: "a1" } })).toBe(1);

    expect(await codeOf(caller(BOB).projects.share({ projectId: "a1", email: "carol@example.com" }))).toBe("FORBIDDEN");
    expect(await codeOf(caller(CAROL).projects.share({ projectId: "a1", email: "carol@example.com" }))).toBe("NOT_FOUND");
    expect(await codeOf(caller(ALICE).projects.share({ projectId: "a1", email: "nobody@example.com" }))).toBe("NOT_FOUND");
    expect(await codeOf(caller(ALICE).projects.share({ projectId: "a1", email: "not an email" }))).toBe("BAD_REQUEST");
    expect(await store.db.projectMember.count()).toBe(1);

    // Carol: no project, no task, no member list, no write.
    const carolProjects = await live<ProjectRow[]>("projects.list", undefined, CAROL);
    const carolTasks = await live<TaskRow[]>("tasks.byProject", { projectId: "a1", filter: "all" }, CAROL);
    await caller(ALICE).tasks.add({ projectId: "a1", title: "secret" });
    await caller(BOB).tasks.add({ projectId: "a1", title: "also secret" });
    expect(await codeOf(caller(CAROL).projects.members({ projectId: "a1" }))).toBe("NOT_FOUND");
    expect(await codeOf(caller(CAROL).tasks.setDone({ id: "ta1", done: true }))).toBe("NOT_FOUND");
    expect(await codeOf(caller(CAROL).projects.unshare({ projectId: "a1", userId: "bob" }))).toBe("NOT_FOUND");
    // Bob (a member) may leave, but not remove the owner's other members... there are none: he leaves.
    await caller(BOB).projects.unshare({ projectId: "a1", userId: "bob" });
    expect(await store.db.projectMember.count()).toBe(0);
    // A later write Carol's groups would re-run on, if they depended on it: still nothing.
    await caller(ALICE).tasks.add({ projectId: "a1", title: "after" });
    // The barrier: a project of Carol's own, committed after that write. The reactor takes changes
    // in commit order, so once her list shows it, whatever "after" caused has been delivered.
    await store.db.project.create({ data: { id: "c1", name: "Carol's own", ownerId: "carol" } });
    await carolProjects.until(() => carolProjects.state.data!.some((p) => p.id === "c1"));
    for (const message of [...carolProjects.state.messages, ...carolTasks.state.messages]) {
      expect(JSON.stringify(message)).not.toMatch(/Alpha|secret|alpha task|after/);
    }
    expect(carolProjects.state.data!.map((p) => p.id)).toEqual(["c1"]);
    expect(carolTasks.state.data).toEqual([]);

    // The note's presence room: only people who can read the project may join it.
    const note = await store.db.note.create({ data: { projectId: "a1" } });
    const join = async (ctx: SecuredContext) => {
      const controller = new AbortController();
      const stream = await caller(ctx, controller.signal).$presence.join({ room: `note:${note.id}`, clientId: `tab-${ctx.user!.id}` });
      const iterator = (stream as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      try {
        await iterator.next();
        return "OK";
      } catch (error) {
        return error instanceof TRPCError ? error.code : String(error);
      } finally {
        controller.abort();
      }
    };
    expect(await join(ALICE)).toBe("OK");
    expect(await join(CAROL)).toBe("FORBIDDEN");
    expect(await join(BOB)).toBe("FORBIDDEN"); // he left the project above
  });
});
