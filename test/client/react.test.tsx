// @vitest-environment happy-dom
// @vitest-environment-options {"settings":{"fetch":{"disableSameOriginPolicy":true}}}
//
// The React client against a real Tether server (HTTP batch + WebSocket/SSE) on PGlite.
// happy-dom's fetch enforces CORS like a browser; the server is on another port than the page,
// hence the option above (a real app serves both from one origin).
import { useState } from "react";
import { act, cleanup, configure, screen, waitFor } from "@testing-library/react";
import { dehydrate, hydrate, QueryClient, useMutation, useQuery } from "@tanstack/react-query";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TetherClient } from "@tether/client";
import type { TestRouter } from "../fixtures/app.ts";
import { createTestStore, type AppStore } from "../support/databases.ts";
import { clientFor, otherClient, renderWith, startServer, tether, type RunningServer } from "./support.tsx";

const { useTRPC, useLiveQuery, useLiveMutation, useConnectionStatus, useTetherClient } = tether;

// Live updates cross a real server, a change feed and a reactor: give waitFor room on a busy machine.
configure({ asyncUtilTimeout: 5_000 });

let store: AppStore;
let closeStore: () => Promise<void>;
let projectSeq = 0;
const teardown: Array<() => unknown> = [];

beforeAll(async () => {
  // One store for the file (PGlite + migrations take seconds); each test gets its own project.
  const made = await createTestStore("pglite");
  store = made.store;
  closeStore = made.close;
  await store.db.user.create({ data: { id: "alice", email: "alice@x", name: "Alice" } });
});

afterEach(async () => {
  cleanup();
  for (const step of teardown.splice(0).reverse()) await step();
});

afterAll(async () => {
  await closeStore?.();
});

async function newProject(titles: string[] = []): Promise<string> {
  const id = `p${++projectSeq}`;
  await store.db.project.create({ data: { id, name: id, ownerId: "alice" } });
  for (const [i, title] of titles.entries()) await store.db.task.create({ data: { projectId: id, title, position: i } });
  return id;
}

async function serve(options: Parameters<typeof startServer>[1] = {}): Promise<RunningServer> {
  const running = await startServer(store, options);
  teardown.push(() => running.stop());
  return running;
}

function client(running: RunningServer, options: Parameters<typeof clientFor>[1] = {}): TetherClient<TestRouter> {
  const made = clientFor(running.server, options);
  teardown.push(() => made.close());
  return made;
}

/** Titles of a rendered list, as text: "a,b,c". */
function TaskList({ projectId, testId = "list" }: { projectId: string; testId?: string }) {
  const trpc = useTRPC();
  const tasks = useLiveQuery(trpc.tasks.byProject.queryOptions({ projectId }));
  return (
    <p data-testid={testId} data-status={tasks.liveStatus} data-position={tasks.position ?? ""}>
      {(tasks.data ?? []).map((t) => t.title).join(",")}
    </p>
  );
}

const text = (testId = "list") => screen.getByTestId(testId).textContent;
const status = (testId = "list") => screen.getByTestId(testId).dataset.status;

describe("useLiveQuery", () => {
  it("renders the first value, then follows mutations from another client and raw SQL writes", async () => {
    const running = await serve();
    const projectId = await newProject(["first"]);
    renderWith(client(running), <TaskList projectId={projectId} />);
    await waitFor(() => expect([text(), status()]).toEqual(["first", "live"]));

    await otherClient(running.server).tasks.add.mutate({ projectId, title: "second" });
    await waitFor(() => expect(text()).toBe("first,second"));

    await store.sql.query(
      `INSERT INTO "Task" (id, "projectId", title, position, "updatedAt") VALUES ('zz-raw', $1, 'raw', 9, now())`,
      [projectId],
    );
    await waitFor(() => expect(text()).toBe("first,second,raw"));
    await store.sql.query(`UPDATE "Task" SET title = 'first!' WHERE "projectId" = $1 AND title = 'first'`, [projectId]);
    await waitFor(() => expect(text()).toBe("first!,second,raw"));
    await store.sql.query(`DELETE FROM "Task" WHERE id = 'zz-raw'`);
    await waitFor(() => expect(text()).toBe("first!,second"));
    expect(status()).toBe("live");
  });

  it("shares the cache entry with useQuery on the same options", async () => {
    const running = await serve();
    const projectId = await newProject(["one"]);
    function Both() {
      const trpc = useTRPC();
      const options = trpc.tasks.byProject.queryOptions({ projectId });
      const plain = useQuery(options);
      const live = useLiveQuery(options);
      const titles = (rows: { title: string }[] | undefined) => (rows ?? []).map((t) => t.title).join(",");
      return (
        <>
          <p data-testid="plain">{titles(plain.data)}</p>
          <p data-testid="live">{titles(live.data)}</p>
        </>
      );
    }
    renderWith(client(running), <Both />);
    await waitFor(() => expect([text("plain"), text("live")]).toEqual(["one", "one"]));
    await otherClient(running.server).tasks.add.mutate({ projectId, title: "two" });
    // useQuery alone would never refetch (nothing invalidates it): it shows the live entry.
    await waitFor(() => expect([text("plain"), text("live")]).toEqual(["one,two", "one,two"]));
  });

  it("shows server-prefetched (hydrated) data on the first render, then keeps it live", async () => {
    const running = await serve();
    const projectId = await newProject(["from the server"]);
    // What a Next.js server component does: prefetch through the router, dehydrate into the page.
    const serverQueryClient = new QueryClient();
    const serverSide = createTRPCOptionsProxy<TestRouter>({
      router: running.app.router,
      ctx: { user: { id: "alice" } },
      queryClient: serverQueryClient,
    });
    await serverQueryClient.prefetchQuery(serverSide.tasks.byProject.queryOptions({ projectId }));
    const page = JSON.parse(JSON.stringify(dehydrate(serverQueryClient)));

    const browser = client(running);
    hydrate(browser.queryClient, page);
    renderWith(browser, <TaskList projectId={projectId} />);
    // No waiting: the hydrated entry is the one the hook reads.
    expect(text()).toBe("from the server");
    await waitFor(() => expect(status()).toBe("live"));
    await otherClient(running.server).tasks.add.mutate({ projectId, title: "then live" });
    await waitFor(() => expect(text()).toBe("from the server,then live"));
  });

  it("runs one server subscription for many components on one query, and none after unmount", async () => {
    const running = await serve();
    const [p1, p2] = [await newProject(["a"]), await newProject(["b"])];
    const view = renderWith(
      client(running),
      <>
        <TaskList projectId={p1} testId="x" />
        <TaskList projectId={p1} testId="y" />
        <TaskList projectId={p1} testId="z" />
        <TaskList projectId={p2} testId="other" />
      </>,
    );
    await waitFor(() => expect(["x", "y", "z", "other"].map(status)).toEqual(["live", "live", "live", "live"]));
    expect(running.app.tether.stats.live()).toMatchObject({ groups: 2, subscriptions: 2 });
    view.unmount();
    await waitFor(() => expect(running.app.tether.stats.live()).toMatchObject({ groups: 0, subscriptions: 0 }));
  });

  it("resubscribes when the input changes, and unsubscribes when disabled", async () => {
    const running = await serve();
    const [p1, p2] = [await newProject(["in one"]), await newProject(["in two"])];
    let choose!: (projectId: string | null) => void;
    function Switcher() {
      const [projectId, setProjectId] = useState<string | null>(p1);
      choose = setProjectId;
      const trpc = useTRPC();
      const tasks = useLiveQuery({ ...trpc.tasks.byProject.queryOptions({ projectId: projectId ?? "" }), enabled: projectId !== null });
      return (
        <p data-testid="list" data-status={tasks.liveStatus}>
          {(tasks.data ?? []).map((t) => t.title).join(",")}
        </p>
      );
    }
    renderWith(client(running), <Switcher />);
    await waitFor(() => expect([text(), status()]).toEqual(["in one", "live"]));
    act(() => choose(p2));
    await waitFor(() => expect([text(), status()]).toEqual(["in two", "live"]));
    await waitFor(() => expect(running.app.tether.stats.live()).toMatchObject({ groups: 1, subscriptions: 1 }));
    // The subscription is on p2 now: a write to p1 changes nothing here, a write to p2 does.
    await otherClient(running.server).tasks.add.mutate({ projectId: p2, title: "more" });
    await waitFor(() => expect(text()).toBe("in two,more"));

    act(() => choose(null));
    await waitFor(() => expect(status()).toBe("idle"));
    await waitFor(() => expect(running.app.tether.stats.live().subscriptions).toBe(0));
  });

  it("reconnects after a server restart and converges: rows deleted while down disappear", async () => {
    const first = await serve();
    const projectId = await newProject(["kept", "doomed"]);
    function WithConnection() {
      const connection = useConnectionStatus();
      return (
        <>
          <TaskList projectId={projectId} />
          <p data-testid="connection">{connection.state}</p>
        </>
      );
    }
    const browser = client(first);
    const seen: string[] = [];
    browser.connection.subscribe(() => seen.push(browser.connection.get().state));
    renderWith(browser, <WithConnection />);
    await waitFor(() => expect([text(), status(), text("connection")]).toEqual(["kept,doomed", "live", "connected"]));

    await first.stop();
    await waitFor(() => expect([status(), text("connection")]).toEqual(["reconnecting", "reconnecting"]));
    // While the server is down: one row goes, one comes.
    await store.sql.query(`DELETE FROM "Task" WHERE "projectId" = $1 AND title = 'doomed'`, [projectId]);
    await store.db.task.create({ data: { projectId, title: "added while down", position: 5 } });
    expect(text()).toBe("kept,doomed"); // the last value stays up meanwhile

    const second = await serve({ port: first.port });
    await waitFor(() => expect([text(), status(), text("connection")]).toEqual(["kept,added while down", "live", "connected"]));
    expect(seen).toContain("reconnecting");
    // And it is live on the new server, not just resynced once.
    await otherClient(second.server).tasks.add.mutate({ projectId, title: "after" });
    await waitFor(() => expect(text()).toBe("kept,after,added while down"));
    expect(second.app.tether.stats.live().subscriptions).toBe(1);
  });

  it("reconnects at once when the browser comes back online instead of waiting out the backoff", async () => {
    const first = await serve();
    const projectId = await newProject(["x"]);
    let sockets = 0;
    class CountingWebSocket extends WebSocket {
      constructor(address: string | URL | null, protocols?: string | string[]) {
        super(address as string | URL, protocols);
        sockets += 1;
      }
    }
    // A minute between retries: only the `online` event can bring it back within the test.
    const browser = client(first, { WebSocket: CountingWebSocket as unknown as typeof WebSocket, reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    renderWith(browser, <TaskList projectId={projectId} />);
    await waitFor(() => expect(status()).toBe("live"));
    expect(sockets).toBe(1);

    await first.stop();
    // The immediate retry fails (nothing listens); the next one is a minute away.
    await waitFor(() => expect(sockets).toBe(2));
    await waitFor(() => expect(status()).toBe("reconnecting"));
    await serve({ port: first.port });
    window.dispatchEvent(new Event("online"));
    await waitFor(() => expect(status()).toBe("live"));
    expect(browser.connection.get()).toMatchObject({ state: "connected", online: true });
  });

  it("works over SSE too", async () => {
    const running = await serve();
    const projectId = await newProject(["over sse"]);
    const browser = client(running, { sse: true });
    renderWith(browser, <TaskList projectId={projectId} />);
    await waitFor(() => expect([text(), status()]).toEqual(["over sse", "live"]));
    expect(running.server.stats()).toMatchObject({ sseConnections: 1, wsConnections: 0 });
    expect(browser.connection.get()).toMatchObject({ transport: "sse", state: "connected" });
    await otherClient(running.server).tasks.add.mutate({ projectId, title: "pushed" });
    await waitFor(() => expect(text()).toBe("over sse,pushed"));
  });
});

describe("mutations", () => {
  /** Renders a live list and hands out the hook results the test drives. */
  function mountWriter(browser: TetherClient<TestRouter>, projectId: string, otherProjectId: string, awaitLive: boolean) {
    const handle: { add?: (title: string) => Promise<{ id: string; title: string }>; tether?: TetherClient<TestRouter> } = {};
    function Writer() {
      const trpc = useTRPC();
      const tasks = useLiveQuery(trpc.tasks.byProject.queryOptions({ projectId }));
      // A second live query the write does not touch: read-your-writes must not wait on it forever.
      useLiveQuery(trpc.tasks.byProject.queryOptions({ projectId: otherProjectId }));
      // Longer than the test may run: a wait that ended by this timeout could never pass.
      const add = useLiveMutation(trpc.tasks.add.mutationOptions(), { awaitLive, timeoutMs: 600_000 });
      handle.add = (title) => add.mutateAsync({ projectId, title });
      handle.tether = useTetherClient();
      return (
        <p data-testid="list" data-status={tasks.liveStatus}>
          {(tasks.data ?? []).map((t) => t.title).join(",")}
        </p>
      );
    }
    renderWith(browser, <Writer />);
    return handle;
  }

  // The reactor waits 500 ms before re-running queries here, so a mutation's response always
  // arrives well before its live echo: only waiting for the commit can show the row at once.
  // Every change waits 500 ms before its re-run, so the live echo of a write comes well after
  // the mutation's response.
  const slowReactor = { batchWindowMs: 500, flushFirstAtOnce: false };

  it("useLiveMutation resolves only after the live list includes the new row (read-your-writes)", async () => {
    const running = await serve({ reactor: slowReactor });
    const [projectId, elsewhere] = [await newProject(["before"]), await newProject(["unrelated"])];
    const browser = client(running);
    const handle = mountWriter(browser, projectId, elsewhere, true);
    await waitFor(() => expect(status()).toBe("live"));
    expect(handle.tether).toBe(browser);

    const created = await act(() => handle.add!("mine"));
    // Right after it resolves, no waitFor: the list already shows the row, from the live stream.
    expect(text()).toBe("before,mine");
    const cached = browser.queryClient.getQueryData(
      [["tasks", "byProject"], { input: { projectId }, type: "query" }],
    ) as Array<{ id: string }>;
    expect(cached.map((t) => t.id)).toContain(created.id);
    // The unrelated live query was confirmed by a probe (the wait's timeout is longer than the test).
    expect(browser.live.stats().probes).toBeGreaterThanOrEqual(1);
  });

  it("without awaitLive the mutation resolves before its live echo (the control for the test above)", async () => {
    const running = await serve({ reactor: slowReactor });
    const [projectId, elsewhere] = [await newProject(["before"]), await newProject([])];
    const handle = mountWriter(client(running), projectId, elsewhere, false);
    await waitFor(() => expect(status()).toBe("live"));
    await act(() => handle.add!("mine"));
    expect(text()).toBe("before");
    await waitFor(() => expect(text()).toBe("before,mine"));
  });

  it("waitForCommit resolves for every live query in use, including ones the write did not touch", async () => {
    const running = await serve();
    const [projectId, elsewhere] = [await newProject([]), await newProject(["still here"])];
    const browser = client(running);
    renderWith(
      browser,
      <>
        <TaskList projectId={projectId} testId="mine" />
        <TaskList projectId={elsewhere} testId="other" />
      </>,
    );
    await waitFor(() => expect([status("mine"), status("other")]).toEqual(["live", "live"]));
    const { result, commits } = await browser.withCommits(() => browser.trpc.tasks.add.mutate({ projectId, title: "w" }));
    expect(commits).toHaveLength(1);
    await browser.waitForCommit(commits, { timeoutMs: 5_000 });
    const positions = browser.live.all().map((q) => q.state.position);
    expect(positions).toHaveLength(2);
    expect(text("mine")).toBe("w");
    expect(result.title).toBe("w");
  });

  it("an optimistic update shows at once and rolls back when the server fails (onMutate/onError)", async () => {
    const running = await serve();
    const projectId = await newProject(["real"]);
    const browser = client(running);
    const rendered: string[] = [];
    let fail!: () => Promise<unknown>;
    function Optimistic() {
      const trpc = useTRPC();
      const options = trpc.tasks.byProject.queryOptions({ projectId });
      const tasks = useLiveQuery(options);
      const queryClient = useTetherClient().queryClient;
      const addThenFail = useMutation(
        trpc.tasks.addThenFail.mutationOptions({
          onMutate: async () => {
            await queryClient.cancelQueries({ queryKey: options.queryKey });
            const previous = queryClient.getQueryData(options.queryKey);
            queryClient.setQueryData(options.queryKey, (old) => [
              ...(old ?? []),
              { ...old![0]!, id: "optimistic", title: "never" },
            ]);
            return { previous };
          },
          onError: (_error, _input, context) => {
            queryClient.setQueryData(options.queryKey, context?.previous);
          },
        }),
      );
      fail = () => addThenFail.mutateAsync({ projectId }).catch((error: unknown) => error);
      const titles = (tasks.data ?? []).map((t) => t.title).join(",");
      rendered.push(titles);
      return (
        <p data-testid="list" data-status={tasks.liveStatus} data-mutation={addThenFail.status}>
          {titles}
        </p>
      );
    }
    renderWith(browser, <Optimistic />);
    await waitFor(() => expect([text(), status()]).toEqual(["real", "live"]));
    const error = await act(() => fail());
    expect(String(error)).toContain("boom after write");
    expect(rendered).toContain("real,never"); // it was shown
    await waitFor(() => expect(screen.getByTestId("list").dataset.mutation).toBe("error"));
    expect(text()).toBe("real"); // and rolled back
    expect(await store.db.task.count({ where: { projectId, title: "never" } })).toBe(0);
    // The entry is still live afterwards.
    await otherClient(running.server).tasks.add.mutate({ projectId, title: "later" });
    await waitFor(() => expect(text()).toBe("real,later"));
  });

  it("the server's pushed value replaces an optimistic row once the write lands", async () => {
    const running = await serve();
    const projectId = await newProject(["real"]);
    const browser = client(running);
    let add!: () => Promise<unknown>;
    function Optimistic() {
      const trpc = useTRPC();
      const options = trpc.tasks.byProject.queryOptions({ projectId });
      const tasks = useLiveQuery(options);
      const queryClient = useTetherClient().queryClient;
      const mutation = useMutation(
        trpc.tasks.add.mutationOptions({
          onMutate: () => {
            queryClient.setQueryData(options.queryKey, (old) => [...(old ?? []), { ...old![0]!, id: "temp", title: "new" }]);
          },
        }),
      );
      add = () => mutation.mutateAsync({ projectId, title: "new" });
      return <p data-testid="list">{(tasks.data ?? []).map((t) => `${t.title}#${t.id === "temp" ? "temp" : "real"}`).join(",")}</p>;
    }
    renderWith(browser, <Optimistic />);
    await waitFor(() => expect(text()).toBe("real#real"));
    await act(() => add());
    // No invalidate, no onSuccess: the live patch alone swaps the temporary row for the real one.
    await waitFor(() => expect(text()).toBe("real#real,new#real"));
  });
});
