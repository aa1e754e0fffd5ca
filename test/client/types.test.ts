// Type tests: checked by `npm run typecheck` (root tsc covers test/). Each @ts-expect-error is an
// assertion that a mistake does not compile; if the types ever let it through, tsc fails here.
import { QueryClient, useMutation, useQuery } from "@tanstack/react-query";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { LiveStatus, TetherClient } from "@tether/client";
import type { TestRouter } from "../fixtures/app.ts";
import { tether } from "./support.tsx";

/** A task as the client sees it: JSON over the wire, so dates are strings. */
interface WireTask {
  id: string;
  projectId: string;
  title: string;
  done: boolean;
  position: number;
  assigneeId: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Never rendered: it exists for the type checker. */
function TypedComponent() {
  const trpc = tether.useTRPC();
  const options = trpc.tasks.byProject.queryOptions({ projectId: "p1" });

  const live = tether.useLiveQuery(options);
  expectTypeOf(live.data).toEqualTypeOf<WireTask[] | undefined>();
  expectTypeOf(live.liveStatus).toEqualTypeOf<LiveStatus>();
  expectTypeOf(live.position).toEqualTypeOf<string | null>();
  // The same options in plain useQuery give the same data type.
  expectTypeOf(useQuery(options).data).toEqualTypeOf(live.data);

  const count = tether.useLiveQuery(trpc.tasks.openCount.queryOptions({ projectId: "p1" }));
  expectTypeOf(count.data).toEqualTypeOf<number | undefined>();

  // `select` maps the data, as with useQuery.
  const titles = tether.useLiveQuery({ ...options, select: (rows) => rows.map((r) => r.title) });
  expectTypeOf(titles.data).toEqualTypeOf<string[] | undefined>();

  // @ts-expect-error projectId must be a string
  tether.useLiveQuery(trpc.tasks.byProject.queryOptions({ projectId: 1 }));
  // @ts-expect-error input is required
  tether.useLiveQuery(trpc.tasks.byProject.queryOptions());
  // @ts-expect-error no such procedure
  tether.useLiveQuery(trpc.tasks.nope.queryOptions({}));
  // @ts-expect-error not tRPC query options: no path to subscribe to
  tether.useLiveQuery({ queryKey: ["x"], queryFn: () => 1 });

  const add = tether.useLiveMutation(trpc.tasks.add.mutationOptions());
  expectTypeOf(add.mutateAsync).parameter(0).toEqualTypeOf<{ projectId: string; title: string; assigneeId?: string | undefined }>();
  expectTypeOf(add.data).toEqualTypeOf<WireTask | undefined>();
  // @ts-expect-error title is required
  add.mutate({ projectId: "p1" });
  // @ts-expect-error done must be a boolean
  useMutation(trpc.tasks.setDone.mutationOptions()).mutate({ id: "t", done: "yes" });
  tether.useLiveMutation(trpc.tasks.add.mutationOptions(), { awaitLive: [options, options.queryKey], timeoutMs: 1000 });
  // @ts-expect-error awaitLive takes query keys or options, not paths
  tether.useLiveMutation(trpc.tasks.add.mutationOptions(), { awaitLive: ["tasks.byProject"] });

  const status = tether.useConnectionStatus();
  expectTypeOf(status.state).toEqualTypeOf<"idle" | "connecting" | "connected" | "reconnecting">();
  return null;
}

describe("types", () => {
  it("queryOptions carry what useLiveQuery reads: the path and the input in the key", async () => {
    const made: TetherClient<TestRouter> = tether.createClient({ url: "http://127.0.0.1:1/trpc", environment: null });
    expectTypeOf(made.trpc.tasks.add.mutate).returns.resolves.toEqualTypeOf<WireTask>();
    const trpc = createTRPCOptionsProxy<TestRouter>({ client: made.trpc, queryClient: new QueryClient() });
    const options = trpc.tasks.byProject.queryOptions({ projectId: "p1" });
    expect(options.trpc.path).toBe("tasks.byProject");
    expect(options.queryKey).toEqual([["tasks", "byProject"], { input: { projectId: "p1" }, type: "query" }]);
    expect(typeof TypedComponent).toBe("function");
    await made.close();
  });
});
