// @tether/client's job functions against a real server (HTTP + WebSocket), on both engines:
// `watchJob` follows a job's progress to its output; another user's watch ends with NOT_FOUND and
// never sees the job; `cancelJob` is the owner's only and aborts the running handler.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TetherServer } from "@tether/server/adapters/node";
import { cancelJob, watchJob, type JobWatch, type TetherClient } from "@tether/client";
import { buildJobsApp, createJobsStore, jobRuns, jobsClientAs, serveJobsApp, type JobsRouter } from "../fixtures/jobsApp.ts";
import { userContext } from "../fixtures/securedApp.ts";
import { engines, type AppStore } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";

describe.each(engines)("job watching from @tether/client on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let app: ReturnType<typeof buildJobsApp>;
  let server: TetherServer;
  const clients: TetherClient<JobsRouter>[] = [];
  const gates = new Map<string, () => void>();

  beforeAll(async () => {
    ({ store, close: closeStore } = await createJobsStore(engine));
    app = buildJobsApp(store, {
      jobs: { limits: { progressIntervalMs: 0, heartbeatRefreshSeconds: 0.2, pollingIntervalSeconds: 0.5 } },
      onStep: (jobId, step) => new Promise<void>((release) => gates.set(`${jobId}:${step}`, release)),
    });
    await app.tether.start();
    server = await serveJobsApp(app.router);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await app?.tether.close();
    await closeStore?.();
  });

  const clientAs = (user: string) => {
    const client = jobsClientAs<JobsRouter>(server, user);
    clients.push(client);
    return client;
  };

  it("the owner follows progress to the output; another user gets NOT_FOUND and nothing else", async () => {
    const alice = clientAs("alice");
    const bob = clientAs("bob");
    const id = await alice.trpc.start.steps.mutate({ steps: 3 });
    const seen: JobWatch[] = [];
    const stop = watchJob(alice, id, (w) => seen.push(w));
    const bobSeen: JobWatch[] = [];
    const stopBob = watchJob(bob, id, (w) => bobSeen.push(w));
    for (let step = 1; step <= 3; step += 1) {
      await waitFor(`step ${step}`, () => gates.has(`${id}:${step}`), { timeoutMs: 20_000 });
      await waitFor(`progress of step ${step}`, () => seen.some((w) => w.job?.progress === Math.round((step * 100) / 3)));
      gates.get(`${id}:${step}`)!();
    }
    await waitFor("completed", () => seen.some((w) => w.job?.status === "completed"), { timeoutMs: 20_000 });
    const last = seen[seen.length - 1]!;
    expect(last.job).toMatchObject({ status: "completed", progress: 100, output: { steps: 3 } });
    expect(last.status).toBe("live");
    const progresses = seen.map((w) => w.job?.progress).filter((p): p is number => p !== undefined);
    expect(progresses).toEqual([...progresses].sort((a, b) => a - b));

    await waitFor("bob's watch failed", () => bobSeen.some((w) => w.status === "error"));
    expect(bobSeen.every((w) => w.job === undefined)).toBe(true);
    expect((bobSeen.find((w) => w.status === "error")!.error as { data?: { code?: string } }).data?.code).toBe("NOT_FOUND");
    stop();
    stopBob();
  });

  it("cancel is the owner's: another user's is NOT_FOUND, the owner's aborts the handler", async () => {
    const alice = clientAs("alice");
    const bob = clientAs("bob");
    const id = await alice.trpc.start.wait.mutate();
    await waitFor("running", async () => (await jobRuns(store.sql, id)).length === 1, { timeoutMs: 20_000 });
    await expect(cancelJob(bob, id)).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    const seen: JobWatch[] = [];
    const stop = watchJob(alice, id, (w) => seen.push(w));
    expect((await cancelJob(alice, id)).status).toBe("cancelled");
    await waitFor("the watcher saw it cancelled", () => seen.some((w) => w.job?.status === "cancelled"));
    await waitFor("the handler stopped", () => app.tether.jobRuntime.stats().running === 0);
    stop();
  });
});
