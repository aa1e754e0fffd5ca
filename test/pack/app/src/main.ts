// The README's quickstart, as an app outside the monorepo would write it against the published
// packages: store on in-memory PGlite, migrate, a query and a mutation, the Node server, and a core
// client that watches the query live over WebSocket while a mutation lands.
import { createStore, initTether, migrate } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { createTetherClient, watchQuery } from "@tether/client";
import { WebSocket } from "ws";
import { z } from "zod";
import { PrismaClient } from "./generated/prisma/client.ts";
import { schema } from "./generated/tether/index.ts";

interface Task {
  id: string;
  projectId: string;
  title: string;
}

const store = await createStore({ dataDir: "memory://", prisma: (adapter) => new PrismaClient({ adapter }) });
await migrate({ sql: store.sql, migrationsDir: new URL("../prisma/migrations", import.meta.url).pathname });

const tether = initTether<{ user: null }>().create({ store, schema });
const appRouter = tether.appRouter({
  tasks: tether.router({
    byProject: tether.query
      .input(z.object({ projectId: z.string() }))
      .query(({ ctx, input }) => ctx.db.task.findMany({ where: { projectId: input.projectId }, orderBy: { title: "asc" } })),
    add: tether.mutation
      .input(z.object({ projectId: z.string(), title: z.string().min(1) }))
      .mutation(({ ctx, input }) => ctx.db.task.create({ data: input })),
  }),
});
export type AppRouter = typeof appRouter;

const server = await createTetherServer({ router: appRouter, createContext: () => ({ user: null }), port: 0 });
const client = createTetherClient<AppRouter>({
  url: `${server.url}/trpc`,
  // ws's class for Node 20 (no global WebSocket); its typings differ from the DOM's in details the
  // client does not use, hence the cast (the repo's own tests do the same).
  subscriptions: { transport: "ws", url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket },
});

const projectId = "p1";
const key = { path: "tasks.byProject", input: { projectId }, queryKey: [["tasks", "byProject"], { input: { projectId }, type: "query" }] };
// Every live value the client shows, in order: first the empty list, then the added task.
const seen: string[][] = [];
let onValue = (): void => undefined;
const stop = watchQuery<Task[]>(client, key, (tasks, status, error) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
  if (status !== "live" || !tasks) return;
  seen.push(tasks.map((task) => task.title));
  onValue();
});
const valueWhere = (test: (titles: string[]) => boolean) =>
  new Promise<void>((resolve) => {
    onValue = () => { if (seen.some(test)) resolve(); };
    onValue();
  });

await valueWhere((titles) => titles.length === 0);
// Typed through the packed declarations: the input is checked and the result is the Prisma row.
const added: Task = await client.trpc.tasks.add.mutate({ projectId, title: "Hello" });
await valueWhere((titles) => titles.includes("Hello"));
stop();

await client.close();
await server.close();
await tether.close();
await store.close();
console.log(JSON.stringify({ added: added.title, seen }));
