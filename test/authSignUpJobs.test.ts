// The demo's jobs on both engines (issue 13, "In the demo"): "Export project as CSV" runs as a job
// with live progress and writes an RFC 4180 file that only its requester can watch or download.
// (The sign-up's welcome, once a job here, is a step of the welcome workflow since issue 14:
// test/demoWelcomeWorkflow.test.ts, with its rollback.)
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveMessage } from "@tether/protocol";
import { createTetherAuth, type JobState, type TetherAuth } from "@tether/server";
import { serveExportDownload } from "../apps/demo/src/server/exportDownload.ts";
import { EXPORT_COLUMNS, parseCsv } from "../apps/demo/src/server/jobs/index.ts";
import { buildRouter } from "../apps/demo/src/server/router.ts";
import { schema } from "../generated/tether/index.ts";
import { userContext, type SecuredContext } from "./fixtures/securedApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { openLive } from "./support/liveCollector.ts";
import { waitFor } from "./support/waitFor.ts";

/** Titles a naive CSV writer gets wrong: commas, quotes, line breaks, leading/trailing spaces. */
const TRICKY_TITLES = ["plain task", "comma, inside", 'quote "this" one', "two\nlines", "crlf\r\nhere", " padded ", '",\n"'];

describe.each(engines)("the demo's CSV export job on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let auth: TetherAuth;
  let app: ReturnType<typeof buildRouter>;
  let server: http.Server;
  let base: string;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    ({ store, close: closeStore } = await createTestStore(engine));
    let onSignUp: ReturnType<typeof buildRouter>["onSignUp"] | undefined;
    auth = createTetherAuth({
      store,
      schema,
      secret: "auth-sign-up-jobs-test-secret-0123456789abcdef",
      rateLimit: false,
      onSignUp: (user, tx) => onSignUp!(user, tx),
    });
    app = buildRouter(store, auth, { jobs: { exportPauseMs: 0, exportBatchSize: 2 } });
    onSignUp = app.onSignUp;
    await app.tether.start();
    server = http.createServer((req, res) => {
      void serveExportDownload(req, res, store, auth).then((handled) => {
        if (!handled) res.writeHead(418).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const stop of stops.splice(0)) await stop();
    await new Promise((resolve) => server?.close(resolve));
    await app?.tether.close();
    auth?.close();
    await closeStore?.();
  });

  const caller = (ctx: SecuredContext, signal?: AbortSignal) => app.tether.createCallerFactory(app.router)(ctx, { signal });

  const live = <T>(path: string, input: unknown, ctx: SecuredContext) => openLive<T>((signal) => caller(ctx, signal).$live({ path, input }), stops);

  /** Signs up through better-auth's endpoint; returns the user and the session cookie. */
  async function signUp(email: string, name: string) {
    const { headers, response } = await auth.auth.api.signUpEmail({ body: { email, name, password: "a good password" }, returnHeaders: true });
    const cookie = headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    return { id: response.user.id, cookie, ctx: userContext(response.user.id) };
  }

  it("an export runs as a job with live progress, writes RFC 4180 CSV, and only its requester sees or downloads it", async () => {
    const alice = await signUp("alice@example.com", "Alice");
    const bob = await signUp("bob@example.com", "Bob");
    const project = await caller(alice.ctx).projects.create({ name: "Export, \"me\"" });
    for (const [position, title] of TRICKY_TITLES.entries()) {
      await store.db.task.create({ data: { projectId: project.id, title, position, done: position % 2 === 0, assigneeId: position === 1 ? alice.id : null } });
    }
    // Nobody but a project's owner or members may export it.
    await expect(caller(bob.ctx).exports.start({ projectId: project.id })).rejects.toMatchObject({ code: "NOT_FOUND" });

    const { jobId, exportId } = await caller(alice.ctx).exports.start({ projectId: project.id });
    const job = await live<JobState>("$jobs.get", { id: jobId }, alice.ctx);
    await job.until(() => ["completed", "failed", "cancelled"].includes(job.state.data?.status ?? ""), 20_000);
    expect(job.state.data).toMatchObject({ status: "completed", progress: 100, output: { exportId, rows: TRICKY_TITLES.length, url: `/exports/${exportId}.csv` } });
    const progress = job.state.messages.filter((m): m is Extract<LiveMessage, { kind: "full" }> => m.kind === "full").map((m) => (m.data as JobState).progress);
    // Never backwards.
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    // The owner downloads it: the project's tasks, tricky fields intact.
    const response = await fetch(`${base}/exports/${exportId}.csv`, { headers: { cookie: alice.cookie } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/csv; charset=utf-8/);
    expect(response.headers.get("content-disposition")).toBe('attachment; filename="Export-me-tasks.csv"');
    const text = await response.text();
    expect(text.endsWith("\r\n")).toBe(true);
    const records = parseCsv(text);
    expect(records[0]).toEqual([...EXPORT_COLUMNS]);
    const rows = records.slice(1);
    expect(rows.map((r) => r[1])).toEqual(TRICKY_TITLES);
    expect(rows.map((r) => r[2])).toEqual(TRICKY_TITLES.map((_, i) => String(i % 2 === 0)));
    expect(rows[1]![3]).toBe("Alice");
    expect(text).toContain('"quote ""this"" one"');
    expect(text).toContain('"comma, inside"');
    expect((await caller(alice.ctx).exports.latest({ projectId: project.id }))).toMatchObject({ id: exportId, status: "ready", rows: TRICKY_TITLES.length });

    // Anyone else: NOT_FOUND on the job, 404 on the file (as for an id that does not exist).
    await expect(caller(bob.ctx).$jobs.get({ id: jobId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(caller(bob.ctx).$jobs.cancel({ id: jobId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    const bobsJob = await live<JobState>("$jobs.get", { id: jobId }, bob.ctx);
    expect(bobsJob.state.data).toBeUndefined();
    expect(bobsJob.state.error).toMatchObject({ code: "NOT_FOUND" });
    expect((await fetch(`${base}/exports/${exportId}.csv`, { headers: { cookie: bob.cookie } })).status).toBe(404);
    expect((await fetch(`${base}/exports/${exportId}.csv`)).status).toBe(404);
    expect((await fetch(`${base}/exports/no-such-export.csv`, { headers: { cookie: alice.cookie } })).status).toBe(404);
    expect(await caller(bob.ctx).exports.latest({ projectId: project.id })).toBeNull();

    // Shared with Bob, he may export too — his own file, still not Alice's.
    await caller(alice.ctx).projects.share({ projectId: project.id, email: "bob@example.com" });
    const bobs = await caller(bob.ctx).exports.start({ projectId: project.id });
    await waitFor("bob's export", async () => (await caller(bob.ctx).$jobs.get({ id: bobs.jobId })).status === "completed", { timeoutMs: 20_000 });
    expect((await fetch(`${base}/exports/${bobs.exportId}.csv`, { headers: { cookie: bob.cookie } })).status).toBe(200);
    expect((await fetch(`${base}/exports/${exportId}.csv`, { headers: { cookie: bob.cookie } })).status).toBe(404);
  });
  it("one user may have 3 unfinished exports; a 4th start is TOO_MANY_REQUESTS, one stuck past its attempts no longer counts", async () => {
    const carol = await signUp("carol@example.com", "Carol");
    const project = await caller(carol.ctx).projects.create({ name: "Backlog" });
    // Pending rows as a backlog of slow exports would leave them (jobs here finish at once).
    const old = new Date(Date.now() - 24 * 3600 * 1000);
    await store.db.projectExport.create({ data: { projectId: project.id, ownerId: carol.id, createdAt: old } });
    for (let i = 0; i < 2; i++) await store.db.projectExport.create({ data: { projectId: project.id, ownerId: carol.id } });
    // Two recent pending and one stuck past its attempts: a start is still allowed.
    await caller(carol.ctx).exports.start({ projectId: project.id });
    await store.db.projectExport.create({ data: { projectId: project.id, ownerId: carol.id } });
    await expect(caller(carol.ctx).exports.start({ projectId: project.id })).rejects.toMatchObject({ code: "TOO_MANY_REQUESTS" });
  });
});
