/**
 * The demo in one Node process: the store (PGlite in `.tether/demo`, or Postgres when
 * DATABASE_URL is set), migrations, the seed, better-auth at /api/auth/*, tRPC at /trpc (HTTP and
 * WebSocket) and the Next.js app for every other path, all on one port.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createStore, createTetherAuth, migrate, type Logger } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../../../generated/prisma/client.ts";
import { schema } from "../../../../generated/tether/index.ts";
import { dataDir as defaultDataDir, migrationsDir } from "../paths.ts";
import { serveExportDownload } from "./exportDownload.ts";
import { publishToPages } from "./pageBridge.ts";
import { buildRouter } from "./router.ts";
import { seed } from "./seed.ts";

export const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Used only when BETTER_AUTH_SECRET is unset: fine for a local demo, never for a deployment. */
const DEV_SECRET = "tether-demo-secret-change-me-0123456789abcdef";

export interface DemoOptions {
  port?: number;
  host?: string;
  dev?: boolean;
  dataDir?: string;
  databaseUrl?: string;
}

export interface RunningDemo {
  url: string;
  log: Logger;
  close(): Promise<void>;
}

export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  process.env.NEXT_TELEMETRY_DISABLED ??= "1";
  const dev = options.dev ?? process.env.NODE_ENV !== "production";
  const port = options.port ?? Number(process.env.PORT ?? 3000);
  const host = options.host ?? process.env.HOST ?? "127.0.0.1";

  const store = await createStore({
    prisma: (adapter) => new PrismaClient({ adapter }),
    url: options.databaseUrl,
    dataDir: options.dataDir ?? defaultDataDir,
  });
  const log = store.log;
  const migrated = await migrate({ sql: store.sql, migrationsDir, log });
  log.info({ engine: store.engine, at: store.location, applied: migrated.applied }, "database ready");

  const secret = process.env.BETTER_AUTH_SECRET ?? DEV_SECRET;
  if (!process.env.BETTER_AUTH_SECRET && !dev) log.warn("BETTER_AUTH_SECRET is not set: using the demo's public secret");
  // The sign-up hook is the router's (it starts the welcome workflow), and the router needs the auth:
  // bound once both exist, before anyone can sign up (the seed, below, is the first).
  let onSignUp: ReturnType<typeof buildRouter>["onSignUp"] | undefined;
  const auth = createTetherAuth({
    store,
    schema,
    secret,
    baseURL: process.env.BETTER_AUTH_URL,
    // On in development too (better-auth alone limits only in production): per IP, and per account.
    rateLimit: {
      signIn: { window: 60, max: 10 },
      signUp: { window: 60, max: 5 },
      signInPerEmail: { window: 15 * 60, max: 10 },
    },
    // In the sign-up's transaction: the welcome workflow commits with the new user, or not at all.
    onSignUp: (user, tx) => {
      if (!onSignUp) throw new Error("sign-up before the app was built");
      return onSignUp(user, tx);
    },
  });

  const built = buildRouter(store, auth);
  const { tether, router } = built;
  onSignUp = built.onSignUp;
  // The job runtime runs before anything enqueues: the seed signs users up (starting their welcome
  // workflows, whose resumes are jobs), and on PGlite pg-boss
  // cannot start inside the sign-up's open transaction.
  await tether.start();
  const seeded = await seed(store, auth, built.workflowsIn);
  if (seeded.length) log.info({ seeded }, "seeded the demo (demo@tether.dev / demo-password)");

  publishToPages({
    router,
    contextFromHeaders: async (headers) => {
      const identity = await auth.sessionFromHeaders(headers);
      return { user: identity?.user ?? null, session: identity?.session ?? null, ip: null };
    },
  });

  process.env.TETHER_REPO_ROOT ??= path.resolve(appDir, "../..");
  const { default: next } = await import("next");
  const nextApp = next({ dev, dir: appDir, hostname: host, port });
  await nextApp.prepare();
  const handle = nextApp.getRequestHandler();
  const upgrade = nextApp.getUpgradeHandler();

  const server = await createTetherServer({
    router,
    createContext: (opts) => auth.createContext(opts),
    port,
    host,
    path: "/trpc",
    log,
    extraRoutes: async (req, res) => {
      if (await auth.routes(req, res)) return true;
      if (await serveExportDownload(req, res, store, auth)) return true;
      if (req.url === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
        return true;
      }
      await handle(req, res);
      return true;
    },
    // Next's own upgrades (HMR in dev); tRPC's path never reaches here.
    onUpgrade: (req, socket, head) => {
      void upgrade(req, socket, head);
      return true;
    },
  });
  const url = `http://${host === "0.0.0.0" ? "localhost" : host}:${server.port}`;
  log.info(`Tether demo on ${url} (${store.engine}, ${dev ? "development" : "production"})`);

  let closing: Promise<void> | undefined;
  return {
    url,
    log,
    close: () =>
      (closing ??= (async () => {
        // Stop serving; Next's own upgraded sockets (HMR in dev) can hold the http server open, so
        // the database is not kept waiting for that beyond a short grace.
        const served = Promise.all([server.close(), nextApp.close()]);
        await Promise.race([served, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
        publishToPages(undefined);
        await tether.close();
        auth.close();
        await store.close();
      })()),
  };
}
