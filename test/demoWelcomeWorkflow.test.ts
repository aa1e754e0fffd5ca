// The demo's welcome workflow on both engines (issue 14, "In the demo"), driven through the demo's
// own router and better-auth: a sign-up starts `welcome:<userId>` in its own transaction (a
// rolled-back sign-up starts nothing); the run writes the welcome message into the live inbox and
// waits for "first project"; the user's first project (its mutation sends the event in its
// transaction) completes it without a nudge; with a short timeout and no project, the nudge
// arrives instead. Only the run's owner can read it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTetherAuth, type TetherAuth, type WorkflowState } from "@tether/server";
import { buildRouter, type DemoRouterOptions } from "../apps/demo/src/server/router.ts";
import { DEMO_PROJECT, DEMO_USER, seed, TEAMMATE } from "../apps/demo/src/server/seed.ts";
import { nudgeMessageId, welcomeMessageId, welcomeWorkflowId, type WelcomeOutput } from "../apps/demo/src/server/workflows/index.ts";
import { schema } from "../generated/tether/index.ts";
import { userContext, type SecuredContext } from "./fixtures/securedApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { openLive } from "./support/liveCollector.ts";
import { waitFor } from "./support/waitFor.ts";

type Message = { id: string; title: string; body: string };
type Run = WorkflowState<WelcomeOutput>;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The demo's router and auth on a fresh database, as app.ts wires them (the sign-up hook is the router's). */
async function openDemo(engine: (typeof engines)[number], options: DemoRouterOptions) {
  const { store, close: closeStore } = await createTestStore(engine);
  let onSignUp: ReturnType<typeof buildRouter>["onSignUp"] | undefined;
  /** When set, the next sign-up fails after its user row (and its welcome run) were written: its account insert throws. */
  const failures = { nextAccount: false };
  const auth: TetherAuth = createTetherAuth({
    store,
    schema,
    secret: "demo-welcome-workflow-test-secret-0123456789abcdef",
    rateLimit: false,
    // The app's hook; for one address it throws after starting the run (a hook's own failure).
    onSignUp: async (user, tx) => {
      await onSignUp!(user, tx);
      if (user.email === "hook-fails@example.com") throw new Error("onSignUp failed (test)");
    },
    betterAuth: {
      databaseHooks: {
        account: {
          create: {
            // Runs inside the sign-up's transaction, after the user's insert and onSignUp.
            before: async () => {
              if (!failures.nextAccount) return;
              failures.nextAccount = false;
              throw new Error("account insert failed (test)");
            },
          },
        },
      },
    },
  });
  const app = buildRouter(store, auth, options);
  onSignUp = app.onSignUp;
  await app.tether.start();
  const stops: Array<() => Promise<void>> = [];
  const caller = (ctx: SecuredContext, signal?: AbortSignal) => app.tether.createCallerFactory(app.router)(ctx, { signal });
  return {
    store: store as AppStore,
    auth,
    app,
    failures,
    caller,
    live: <T>(path: string, input: unknown, ctx: SecuredContext) => openLive<T>((signal) => caller(ctx, signal).$live({ path, input }), stops),
    /** Signs up through better-auth's endpoint, as the sign-up page does. */
    async signUp(email: string, name: string) {
      const { user } = await auth.auth.api.signUpEmail({ body: { email, name, password: "a good password" } });
      return { id: user.id, ctx: userContext(user.id) };
    },
    async close() {
      for (const stop of stops.splice(0)) await stop();
      await app.tether.close();
      auth.close();
      await closeStore();
    },
  };
}
type Demo = Awaited<ReturnType<typeof openDemo>>;

const runCount = async (store: AppStore) => (await store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "_tether_workflows" WHERE name = 'welcome'`))[0]!.n;
const resumeJobs = async (store: AppStore) => (await store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'tether._tether.workflow'`))[0]!.n;
const eventCount = async (store: AppStore, runId: string) =>
  (await store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "_tether_workflow_events" WHERE workflow_id = $1`, [runId]))[0]!.n;
const FINISHED = ["completed", "failed", "cancelled"];

describe.each(engines)("the demo's welcome workflow on %s", (engine) => {
  describe("with the default timeout (a day)", () => {
    let demo: Demo;
    beforeAll(async () => {
      demo = await openDemo(engine, {});
    });
    afterAll(async () => {
      await demo?.close();
    });

    it("a sign-up starts welcome:<id>: the welcome message reaches the live inbox, the run waits a day for the first project, only its owner sees it", async () => {
      const dana = await demo.signUp("dana@example.com", "Dana");
      const runId = welcomeWorkflowId(dana.id);
      const inbox = await demo.live<Message[]>("inbox.list", undefined, dana.ctx);
      await inbox.until(() => (inbox.state.data ?? []).some((m) => m.id === welcomeMessageId(dana.id)), 20_000);
      expect(inbox.state.data!.find((m) => m.id === welcomeMessageId(dana.id))!.title).toBe("Welcome to Tether, Dana!");

      const run = await demo.live<Run>("$workflows.get", { id: runId }, dana.ctx);
      await run.until(() => run.state.data?.status === "waiting", 20_000);
      const waiting = run.state.data!;
      expect(waiting).toMatchObject({ id: runId, name: "welcome", input: { userId: dana.id }, currentStep: "first project" });
      expect(waiting.steps.map((s) => [s.name, s.kind, s.status])).toEqual([
        ["send welcome", "run", "completed"],
        ["first project", "event", "waiting"],
      ]);
      const deadline = Date.parse(waiting.steps[1]!.wakeAt!) - Date.parse(waiting.steps[1]!.startedAt!);
      expect(Math.abs(deadline - DAY_MS)).toBeLessThan(60_000);
      // No nudge while it waits.
      expect(inbox.state.data!.map((m) => m.id)).not.toContain(nudgeMessageId(dana.id));

      // Someone else: NOT_FOUND, as for a run that does not exist; nor in their inbox.
      const erin = await demo.signUp("erin@example.com", "Erin");
      await expect(demo.caller(erin.ctx).$workflows.get({ id: runId })).rejects.toMatchObject({ code: "NOT_FOUND" });
      await expect(demo.caller(erin.ctx).$workflows.cancel({ id: runId })).rejects.toMatchObject({ code: "NOT_FOUND" });
      expect((await demo.caller(erin.ctx).inbox.list()).map((m) => m.id)).not.toContain(welcomeMessageId(dana.id));
    });

    it("the user's first project completes the run without a nudge; a later project's event is ignored", async () => {
      const fay = await demo.signUp("fay@example.com", "Fay");
      const runId = welcomeWorkflowId(fay.id);
      const run = await demo.live<Run>("$workflows.get", { id: runId }, fay.ctx);
      await run.until(() => run.state.data?.status === "waiting", 20_000);

      const project = await demo.caller(fay.ctx).projects.create({ name: "Fay's first" });
      await run.until(() => FINISHED.includes(run.state.data?.status ?? ""), 20_000);
      expect(run.state.data).toMatchObject({ status: "completed", output: { firstProject: { id: project.id, name: "Fay's first" } } });
      expect(run.state.data!.steps.map((s) => [s.name, s.status])).toEqual([
        ["send welcome", "completed"],
        ["first project", "completed"],
        ["record first project", "completed"],
      ]);
      // The step list moved live: the subscriber saw the wait end before the run completed.
      const seen = run.state.messages.filter((m) => m.kind === "full").map((m) => (m.data as Run).status);
      expect(seen.indexOf("waiting")).toBeGreaterThanOrEqual(0);
      expect(seen.indexOf("waiting")).toBeLessThan(seen.lastIndexOf("completed"));
      expect((await demo.caller(fay.ctx).inbox.list()).map((m) => m.id)).toEqual([welcomeMessageId(fay.id)]);

      // A second project: its event finds the run finished and is not kept.
      await demo.caller(fay.ctx).projects.create({ name: "Fay's second" });
      expect(await eventCount(demo.store, runId)).toBe(1);
    });

    it("a sign-up rolled back starts nothing: no run, no resume job", async () => {
      const runsBefore = await runCount(demo.store);
      const resumesBefore = await resumeJobs(demo.store);
      demo.failures.nextAccount = true;
      await expect(demo.auth.auth.api.signUpEmail({ body: { email: "gina@example.com", name: "Gina", password: "a good password" } })).rejects.toBeDefined();
      expect(demo.failures.nextAccount).toBe(false); // the failure did fire, after the user row and the start
      expect(await demo.store.db.user.count({ where: { email: "gina@example.com" } })).toBe(0);
      // The hook itself throwing after its start: better-auth answers 422, nothing is kept.
      await expect(demo.auth.auth.api.signUpEmail({ body: { email: "hook-fails@example.com", name: "Hal", password: "a good password" } })).rejects.toMatchObject({
        statusCode: 422,
      });
      expect(await demo.store.db.user.count({ where: { email: "hook-fails@example.com" } })).toBe(0);
      expect(await runCount(demo.store)).toBe(runsBefore);
      expect(await resumeJobs(demo.store)).toBe(resumesBefore);

      // The same sign-up again, not failing: exactly one run, one first resume.
      const gina = await demo.signUp("gina@example.com", "Gina");
      expect(await runCount(demo.store)).toBe(runsBefore + 1);
      expect(await resumeJobs(demo.store)).toBeGreaterThan(resumesBefore);
      await waitFor("gina's run waits", async () => (await demo.caller(gina.ctx).$workflows.get({ id: welcomeWorkflowId(gina.id) })).status === "waiting", { timeoutMs: 20_000 });
    });

    it("the sign-up hook refuses until the runtime is started (on PGlite, pg-boss starting inside the sign-up's transaction would wait for it)", async () => {
      const idle = buildRouter(demo.store, demo.auth);
      try {
        await expect(idle.onSignUp({ id: "nobody" }, {})).rejects.toThrow("workflows.inTransaction: start the job runtime (tether.start()) first");
      } finally {
        await idle.tether.close();
      }
    });

    it("a user without a run (from before the workflow) still creates projects", async () => {
      const old = await demo.store.db.user.create({ data: { email: "old@example.com", name: "Old Timer" } });
      const project = await demo.caller(userContext(old.id)).projects.create({ name: "Still works" });
      expect(await demo.store.db.project.count({ where: { id: project.id } })).toBe(1);
      await expect(demo.caller(userContext(old.id)).$workflows.get({ id: welcomeWorkflowId(old.id) })).rejects.toMatchObject({ code: "NOT_FOUND" });
    });

    it("the seed: its users get runs like anyone; the demo user's sample project counts as their first, the teammate waits", async () => {
      await seed(demo.store, demo.auth, demo.app.workflowsIn);
      const demoUser = await demo.store.db.user.findUniqueOrThrow({ where: { email: DEMO_USER.email } });
      const teammate = await demo.store.db.user.findUniqueOrThrow({ where: { email: TEAMMATE.email } });
      const runOf = (id: string) => demo.caller(userContext(id)).$workflows.get({ id: welcomeWorkflowId(id) });
      await waitFor("the demo user's run completes", async () => (await runOf(demoUser.id)).status === "completed", { timeoutMs: 20_000 });
      expect((await runOf(demoUser.id)).output).toEqual({ firstProject: { id: DEMO_PROJECT.id, name: DEMO_PROJECT.name } });
      await waitFor("the teammate's run waits", async () => (await runOf(teammate.id)).status === "waiting", { timeoutMs: 20_000 });
      // Seeding again changes nothing.
      expect(await seed(demo.store, demo.auth, demo.app.workflowsIn)).toEqual([]);
      expect(await eventCount(demo.store, welcomeWorkflowId(demoUser.id))).toBe(1);
    });
  });

  describe("with a short timeout (as TETHER_DEMO_WELCOME_TIMEOUT_MS sets it)", () => {
    let demo: Demo;
    beforeAll(async () => {
      demo = await openDemo(engine, { workflows: { welcomeFirstProjectTimeoutMs: 200 } });
    });
    afterAll(async () => {
      await demo?.close();
    });

    it("no project within the timeout: the nudge reaches the live inbox and the run completes; a later project is fine", async () => {
      const hank = await demo.signUp("hank@example.com", "Hank");
      const runId = welcomeWorkflowId(hank.id);
      const inbox = await demo.live<Message[]>("inbox.list", undefined, hank.ctx);
      await inbox.until(() => (inbox.state.data ?? []).some((m) => m.id === nudgeMessageId(hank.id)), 30_000);
      expect(inbox.state.data!.find((m) => m.id === nudgeMessageId(hank.id))!.title).toBe("Start your first project");
      expect(inbox.state.data!.map((m) => m.id)).toContain(welcomeMessageId(hank.id));
      await waitFor("hank's run completes", async () => (await demo.caller(hank.ctx).$workflows.get({ id: runId })).status === "completed", { timeoutMs: 20_000 });
      const run = await demo.caller(hank.ctx).$workflows.get({ id: runId });
      expect(run.output).toEqual({ firstProject: null });
      expect(run.steps.map((s) => [s.name, s.status, s.result])).toEqual([
        ["send welcome", "completed", { delivered: true }],
        ["first project", "completed", null],
        ["nudge", "completed", { delivered: true }],
      ]);
      // The first project after the run ended: created, the event ignored (the run is finished).
      await demo.caller(hank.ctx).projects.create({ name: "Late" });
      expect(await eventCount(demo.store, runId)).toBe(0);
    });
  });
});
