// The demo's server rendering with its data transformer, on both engines: a page's queries run
// through the demo router with the caller's context (as src/lib/prefetch.ts does for every page),
// are dehydrated, cross to the browser as JSON (what the HTML carries), and are hydrated into the
// browser's QueryClient (src/lib/queryClient.ts): the tasks' dates are `Date`s there, as they are
// in query results and live updates.
import { hydrate } from "@tanstack/react-query";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prefetchWith } from "../apps/demo/src/lib/prefetch.ts";
import { browserQueryClient } from "../apps/demo/src/lib/queryClient.ts";
import { userContext } from "./fixtures/securedApp.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { openDemoApp, type DemoApp } from "./support/demoApp.ts";
import { seedAliceAndBob } from "./support/seed.ts";

describe.each(engines)("the demo's server-rendered data on %s", (engine) => {
  let store: AppStore;
  let demo: DemoApp;

  beforeEach(async () => {
    demo = await openDemoApp(engine, "demo-hydration-test-secret-0123456789abcdef");
    store = demo.store;
    await seedAliceAndBob(store, { alice: ["a1", "Alpha"], bob: ["b1", "Bravo"] });
    await store.db.task.create({ data: { id: "t1", projectId: "a1", title: "hydrated", position: 0 } });
  });
  afterEach(() => demo.close());

  it("dehydrates the page's queries through superjson, and the browser hydrates Dates", async () => {
    const task = await store.db.task.findUniqueOrThrow({ where: { id: "t1" } });
    const state = await prefetchWith(demo.app.router, userContext("alice"), (trpc) => [
      trpc.tasks.byProject.queryOptions({ projectId: "a1", filter: "all" }),
      trpc.activity.recent.queryOptions({ projectId: "a1" }),
      trpc.projects.get.queryOptions({ id: "b1" }), // not Alice's: left out, the browser asks again
    ]);
    const html = JSON.parse(JSON.stringify(state)) as typeof state; // what the page's HTML carries

    const browser = browserQueryClient();
    hydrate(browser, html);
    const tasks = browser.getQueriesData<Array<{ id: string; createdAt: Date; updatedAt: Date }>>({ queryKey: [["tasks", "byProject"]] })[0]?.[1];
    expect(tasks).toHaveLength(1);
    expect(tasks![0]!.createdAt).toBeInstanceOf(Date);
    expect(tasks![0]!.updatedAt.getTime()).toBe(task.updatedAt.getTime());
    const activity = browser.getQueriesData<Array<{ updatedAt: Date }>>({ queryKey: [["activity", "recent"]] })[0]?.[1];
    expect(activity![0]!.updatedAt).toBeInstanceOf(Date);
    expect(browser.getQueriesData({ queryKey: [["projects", "get"]] }).filter(([, data]) => data !== undefined)).toEqual([]);
  });
});
