// @tether/client's workflow functions against a real server (HTTP + WebSocket), on both engines:
// `watchWorkflow` follows a run's steps to its output; another user's watch ends with NOT_FOUND
// and never sees the run; `cancelWorkflow` is the owner's only.
import { QueryClient } from "@tanstack/query-core";
import { WebSocket } from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import {
  cancelWorkflow,
  createTetherClient,
  watchWorkflow,
  type TetherClient,
  type WorkflowWatch,
} from "@tether/client";
import { buildWorkflowsApp, createWorkflowsStore } from "../fixtures/workflowsApp.ts";
import { userContext } from "../fixtures/securedApp.ts";
import { engines, type AppStore } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";

type Router = ReturnType<typeof buildWorkflowsApp>["router"];

describe.each(engines)("workflow watching from @tether/client on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let app: ReturnType<typeof buildWorkflowsApp>;
  let server: TetherServer;
  const clients: TetherClient<Router>[] = [];
  const gates = new Map<string, () => void>();

  beforeAll(async () => {
    ({ store, close: closeStore } = await createWorkflowsStore(engine));
    app = buildWorkflowsApp(store, {
      jobs: { limits: { heartbeatRefreshSeconds: 0.2, pollingIntervalSeconds: 0.5 } },
      onStep: (workflowId, step) => (workflowId === "held" ? new Promise<void>((release) => gates.set(step, release)) : undefined),
    });
    await app.tether.start();
    server = await createTetherServer({
      router: app.router,
      createContext: (opts) => userContext(opts.connectionParams?.user ?? String(opts.req.headers["x-user"] ?? "nobody")),
      port: 0,
      closeGraceMs: 100,
    });
  }, 180_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await app?.tether.close();
    await closeStore?.();
  });

  const clientAs = (user: string) => {
    const client = createTetherClient<Router>({
      url: `${server.url}/trpc`,
      headers: { "x-user": user },
      subscriptions: { transport: "ws", url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user } },
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      queryClient: new QueryClient({ defaultOptions: { queries: { retry: false } } }),
    });
    clients.push(client);
    return client;
  };

  it("the owner follows each step to the output; another user gets NOT_FOUND; cancel is the owner's", async () => {
    const alice = clientAs("alice");
    const bob = clientAs("bob");
    const id = await alice.trpc.start.three.mutate({ tag: "client", id: "held" });
    const seen: WorkflowWatch[] = [];
    const stop = watchWorkflow(alice, id, (w) => seen.push(w));
    const bobSeen: WorkflowWatch[] = [];
    const stopBob = watchWorkflow(bob, id, (w) => bobSeen.push(w));
    for (const step of ["a", "b", "c"]) {
      await waitFor(`step ${step} held`, () => gates.has(step), { timeoutMs: 30_000 });
      await waitFor(`step ${step} seen running`, () => seen.some((w) => w.workflow?.currentStep === step && w.workflow.steps.at(-1)?.status === "running"));
      gates.get(step)!();
    }
    await waitFor("completed", () => seen.some((w) => w.workflow?.status === "completed"), { timeoutMs: 30_000 });
    expect(seen.at(-1)!.workflow).toMatchObject({ status: "completed", output: { tag: "client", by: "alice" } });
    expect(seen.at(-1)!.workflow!.steps.map((s) => s.status)).toEqual(["completed", "completed", "completed"]);
    await waitFor("bob's watch failed", () => bobSeen.some((w) => w.status === "error"));
    expect(bobSeen.every((w) => w.workflow === undefined)).toBe(true);
    expect((bobSeen.find((w) => w.status === "error")!.error as { data?: { code?: string } }).data?.code).toBe("NOT_FOUND");
    stop();
    stopBob();

    const waiting = await alice.trpc.start.any.mutate({ name: "waiter", input: {} });
    await waitFor("waiting", async () => (await alice.trpc.$workflows.get.query({ id: waiting })).status === "waiting", { timeoutMs: 30_000 });
    await expect(cancelWorkflow(bob, waiting)).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    expect((await cancelWorkflow(alice, waiting)).status).toBe("cancelled");
  });
});
