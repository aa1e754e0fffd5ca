import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
  wsLink,
  type TRPCLink,
} from "@trpc/client";
import { EventSource } from "eventsource";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { applyListPatch, ManualClock, type LiveMessage } from "@tether/protocol";
import { createTetherAuth, type TetherAuth } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { schema } from "../generated/tether/index.ts";
import { buildSecuredApp, type SecuredRouter } from "./fixtures/securedApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { waitFor } from "./support/waitFor.ts";

const SECRET = "test-secret-test-secret-test-secret-0123456789";
const PASSWORD = "correct horse battery staple";
const MAX_BODY = 20_000;
const GENEROUS_AUTH_LIMITS = { signIn: { window: 60, max: 10_000 }, signUp: { window: 60, max: 10_000 } };

type ProjectRow = { id: string; name: string; ownerId: string; tasks: Array<{ id: string; title: string }> };

const codeOf = (error: unknown) =>
  error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code ?? error.message : `not a client error: ${String(error)}`;

/** The session cookie (`name=value`) from a better-auth response. */
function sessionCookie(response: Response): string {
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="));
  if (!cookie) throw new Error(`no session cookie (status ${response.status})`);
  return cookie.split(";")[0]!;
}

describe.each(engines)("auth on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let auth: TetherAuth;
  let app: ReturnType<typeof buildSecuredApp>;
  let server: TetherServer;
  /** The clock that ends subscriptions at their session's expiry (better-auth keeps the real one). */
  let clock: ManualClock;
  const cleanups: Array<() => unknown> = [];

  beforeEach(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    closeStore = made.close;
    // These tests sign up and in many times a minute from one address: generous explicit limits
    // (the defaults are tested in defaultLimits.test.ts).
    clock = new ManualClock();
    auth = createTetherAuth({ store, schema, secret: SECRET, rateLimit: GENEROUS_AUTH_LIMITS, clock });
    app = buildSecuredApp(store, { auth });
    server = await createTetherServer({
      router: app.router,
      createContext: (opts) => auth.createContext(opts),
      extraRoutes: auth.routes,
      limits: { maxBodyBytes: MAX_BODY },
    });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server.close();
    await app.tether.close();
    auth.close();
    await closeStore();
  });

  /** better-auth's endpoints, over real HTTP, as a browser's fetch would call them. */
  async function authCall(path: string, body: unknown, cookie?: string): Promise<Response> {
    return fetch(`${server.url}/api/auth${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: server.url, ...(cookie ? { cookie } : {}) },
      body: JSON.stringify(body ?? {}),
    });
  }

  async function signUp(name: string): Promise<{ cookie: string; userId: string }> {
    const response = await authCall("/sign-up/email", { email: `${name}@example.com`, password: PASSWORD, name, role: "admin" });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { user: { id: string } };
    return { cookie: sessionCookie(response), userId: body.user.id };
  }

  function httpClient(cookie?: string) {
    return createTRPCClient<SecuredRouter>({
      links: [httpBatchLink({ url: `${server.url}/trpc`, headers: cookie ? { cookie } : {} })],
    });
  }

  /** Queries and subscriptions over one WebSocket, authenticated by cookie (upgrade request) or token (connectionParams). */
  function wsClient(credentials: { cookie?: string; token?: string }) {
    class CookieWebSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols, { headers: credentials.cookie ? { cookie: credentials.cookie } : {} });
      }
    }
    const ws = createWSClient({
      url: server.wsUrl,
      WebSocket: CookieWebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: credentials.token ? { token: credentials.token } : undefined,
      retryDelayMs: () => 50,
    });
    cleanups.push(() => ws.close());
    return createTRPCClient<SecuredRouter>({ links: [wsLink({ client: ws })] });
  }

  function sseClient(credentials: { token?: string; cookie?: string }) {
    const subscriptions: TRPCLink<SecuredRouter> = httpSubscriptionLink({
      url: `${server.url}/trpc`,
      EventSource,
      connectionParams: credentials.token ? { token: credentials.token } : undefined,
      eventSourceOptions: credentials.cookie
        ? { fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, cookie: credentials.cookie! } }) }
        : undefined,
    });
    return createTRPCClient<SecuredRouter>({
      links: [splitLink({ condition: (op) => op.type === "subscription", true: subscriptions, false: httpBatchLink({ url: `${server.url}/trpc` }) })],
    });
  }

  /** A live subscription through a tRPC client: data as applied, the error it ended with, and when. */
  function subscribeLive<T>(client: ReturnType<typeof httpClient>, path: string) {
    const state = { messages: [] as LiveMessage[], data: undefined as T | undefined, error: undefined as unknown, endedAt: 0 };
    const sub = client.$live.subscribe(
      { path, input: undefined },
      {
        onData: ({ data }) => {
          const message = data as LiveMessage;
          state.messages.push(message);
          if (message.kind === "full") state.data = message.data as T;
          else if (message.kind === "patch") {
            state.data = applyListPatch(state.data as Array<Record<string, unknown>>, message.patch) as T;
          }
        },
        onError: (error) => {
          state.error = error;
          state.endedAt = Date.now();
        },
      },
    );
    cleanups.push(() => sub.unsubscribe());
    return { state, sub };
  }

  const until = (predicate: () => boolean) => waitFor("the subscription's state", predicate);

  it("signs up, in and out through better-auth's handler; the session cookie authenticates tRPC calls", async () => {
    const { cookie, userId } = await signUp("alice");
    // Sign-up cannot choose a role (`input: false`): an admin is made by the app, not the form.
    expect(await httpClient(cookie).me.query()).toEqual({ id: userId, email: "alice@example.com", role: "user" });
    const stored = await store.db.account.findFirst({ where: { userId } });
    expect(stored?.providerId).toBe("credential");
    expect(stored?.password).not.toContain(PASSWORD); // hashed by better-auth

    const wrong = await authCall("/sign-in/email", { email: "alice@example.com", password: "nope nope nope" });
    expect(wrong.status).toBe(401);
    const signIn = await authCall("/sign-in/email", { email: "alice@example.com", password: PASSWORD });
    expect(signIn.status).toBe(200);
    const second = sessionCookie(signIn);
    expect(await store.db.session.count({ where: { userId } })).toBe(2);
    expect((await httpClient(second).me.query()).id).toBe(userId);

    const signOut = await authCall("/sign-out", {}, second);
    expect(signOut.status).toBe(200);
    expect(codeOf(await httpClient(second).me.query().catch((e) => e))).toBe("UNAUTHORIZED");
    // The first session is still good; anonymous calls are refused by the guard.
    expect((await httpClient(cookie).me.query()).id).toBe(userId);
    expect(codeOf(await httpClient().me.query().catch((e) => e))).toBe("UNAUTHORIZED");

    // The app's own write path works for the signed-in user, under the policies.
    const client = httpClient(cookie);
    const project = await client.projects.create.mutate({ name: "mine" });
    expect(project.ownerId).toBe(userId);
    expect((await client.projects.list.query()).map((p) => p.id)).toEqual([project.id]);
  });

  it("refuses a forged or expired cookie with UNAUTHORIZED", async () => {
    const { cookie, userId } = await signUp("alice");
    const [name, value] = cookie.split("=") as [string, string];
    const token = decodeURIComponent(value).split(".")[0]!;
    // A token without a valid signature, a signature for another token, garbage.
    for (const forged of [`${name}=${token}`, `${name}=${encodeURIComponent(`${token}x.${decodeURIComponent(value).split(".")[1]}`)}`, `${name}=garbage`]) {
      expect(codeOf(await httpClient(forged).me.query().catch((e) => e))).toBe("UNAUTHORIZED");
    }
    await store.db.session.updateMany({ where: { userId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(codeOf(await httpClient(cookie).me.query().catch((e) => e))).toBe("UNAUTHORIZED");
    // The same over WebSocket, by cookie and by token.
    expect(codeOf(await wsClient({ cookie }).me.query().catch((e) => e))).toBe("UNAUTHORIZED");
    expect(codeOf(await wsClient({ token: value }).me.query().catch((e) => e))).toBe("UNAUTHORIZED");
  });

  it("WebSocket: cookie or token; A never receives B's rows; a revoked session's subscription ends with UNAUTHORIZED and nothing follows", async () => {
    const alice = await signUp("alice");
    const bob = await signUp("bob");
    const aliceHttp = httpClient(alice.cookie);
    const bobHttp = httpClient(bob.cookie);
    const a1 = await aliceHttp.projects.create.mutate({ name: "alice's" });
    const b1 = await bobHttp.projects.create.mutate({ name: "bob's" });

    const byCookie = wsClient({ cookie: alice.cookie });
    const byToken = wsClient({ token: alice.cookie.split("=")[1]! });
    expect((await byCookie.me.query()).id).toBe(alice.userId);
    expect((await byToken.me.query()).id).toBe(alice.userId);
    const viaCookie = subscribeLive<ProjectRow[]>(byCookie, "projects.list");
    const viaToken = subscribeLive<ProjectRow[]>(byToken, "projects.list");
    await until(() => viaCookie.state.data?.length === 1 && viaToken.state.data?.length === 1);

    // Bob writes; Alice's streams carry none of it. Alice writes; both of hers get it.
    await bobHttp.tasks.add.mutate({ projectId: b1.id, title: "bob secret" });
    await bobHttp.projects.create.mutate({ name: "bob 2" });
    await aliceHttp.tasks.add.mutate({ projectId: a1.id, title: "alice visible" });
    await until(() => viaCookie.state.data?.[0]?.tasks.length === 1 && viaToken.state.data?.[0]?.tasks.length === 1);
    const received = JSON.stringify([viaCookie.state.messages, viaToken.state.messages]);
    for (const secret of [b1.id, bob.userId, "bob's", "bob secret", "bob 2"]) expect(received).not.toContain(secret);

    // Revoke Alice's session (sign-out elsewhere). Both subscriptions on it end, promptly.
    const revokedAt = Date.now();
    expect((await authCall("/sign-out", {}, alice.cookie)).status).toBe(200);
    await until(() => viaCookie.state.error !== undefined && viaToken.state.error !== undefined);
    expect(codeOf(viaCookie.state.error)).toBe("UNAUTHORIZED");
    expect(codeOf(viaToken.state.error)).toBe("UNAUTHORIZED");
    expect(viaCookie.state.endedAt).toBeGreaterThanOrEqual(revokedAt);
    expect(viaToken.state.endedAt).toBeGreaterThanOrEqual(revokedAt);

    // Nothing arrives after; the socket's context is dead for every call, live or not.
    const seen = viaCookie.state.messages.length + viaToken.state.messages.length;
    await store.db.task.create({ data: { projectId: a1.id, title: "after sign-out" } });
    // The barrier: Alice signed in again on a new socket sees that task, so the reactor has sent
    // what it causes; then a call on each old socket (ordered after anything sent on it before).
    const signedIn = sessionCookie(await authCall("/sign-in/email", { email: "alice@example.com", password: PASSWORD }));
    const fresh = subscribeLive<ProjectRow[]>(wsClient({ cookie: signedIn }), "projects.list");
    await until(() => fresh.state.data?.[0]?.tasks.some((task) => task.title === "after sign-out") === true);
    expect(codeOf(await byCookie.me.query().catch((e) => e))).toBe("UNAUTHORIZED");
    expect(codeOf(await byToken.me.query().catch((e) => e))).toBe("UNAUTHORIZED");
    expect(viaCookie.state.messages.length + viaToken.state.messages.length).toBe(seen);
    const again = subscribeLive<ProjectRow[]>(byToken, "projects.list");
    await until(() => again.state.error !== undefined);
    expect(codeOf(again.state.error)).toBe("UNAUTHORIZED");
    expect(again.state.messages).toEqual([]);
    fresh.sub.unsubscribe();
    await until(() => app.tether.stats.live().subscriptions === 0);
  });

  it("SSE: a session revoked through better-auth's API ends its subscription with UNAUTHORIZED", async () => {
    const alice = await signUp("alice");
    const client = sseClient({ cookie: alice.cookie });
    const live = subscribeLive<ProjectRow[]>(client, "projects.list");
    await until(() => live.state.data !== undefined);
    const [session] = await store.db.session.findMany({ where: { userId: alice.userId } });
    const revokedAt = Date.now();
    await auth.auth.api.revokeSession({ body: { token: session!.token }, headers: new Headers({ cookie: alice.cookie }) });
    await until(() => live.state.error !== undefined);
    expect(codeOf(live.state.error)).toBe("UNAUTHORIZED");
    expect(live.state.endedAt).toBeGreaterThanOrEqual(revokedAt);
  });

  it("ends subscriptions when the session expires: its expiresAt moved into the past, or reached", async () => {
    const alice = await signUp("alice");
    const client = wsClient({ cookie: alice.cookie });
    const moved = subscribeLive<ProjectRow[]>(client, "projects.list");
    await until(() => moved.state.data !== undefined);
    // Moved into the past (e.g. an admin expiring it): seen on the change feed.
    await store.db.session.updateMany({ where: { userId: alice.userId }, data: { expiresAt: new Date(clock.now() - 1) } });
    await until(() => moved.state.error !== undefined);
    expect(codeOf(moved.state.error)).toBe("UNAUTHORIZED");

    // Reached: shortened to expire in 1.5 s (better-auth would extend a session in use when
    // authenticating, so shorten it once the subscription runs). The timer ends it at expiry, on
    // the test's clock: 1.5 s pass in no time, and "not a millisecond sooner" is exact.
    const bob = await signUp("bob");
    const bobLive = subscribeLive<ProjectRow[]>(wsClient({ cookie: bob.cookie }), "projects.list");
    await until(() => bobLive.state.data !== undefined);
    clock.advance(Date.now() - clock.now()); // to real time: better-auth's clock
    await store.db.session.updateMany({ where: { userId: bob.userId }, data: { expiresAt: new Date(clock.now() + 1500) } });
    // Barrier: the session watcher sees each change before the reactor does, so once Bob's list
    // shows a later write, his new expiry is armed (and, the second time, his stream still runs).
    const seesProject = async (name: string) => {
      await store.db.project.create({ data: { name, ownerId: bob.userId } });
      await until(() => bobLive.state.data?.some((project) => project.name === name) === true);
    };
    await seesProject("after the expiry moved");
    clock.advance(1499);
    await seesProject("a millisecond before expiry");
    expect(bobLive.state.error).toBeUndefined();
    clock.advance(1);
    await until(() => bobLive.state.error !== undefined);
    expect(codeOf(bobLive.state.error)).toBe("UNAUTHORIZED");
  });

  it("keeps better-auth's tables out of ctx.db", async () => {
    const alice = await signUp("alice");
    const client = httpClient(alice.cookie);
    expect(await client.system.sessions.query()).toEqual([]);
    expect(await client.system.accounts.query()).toBe(0);
    expect(await store.db.session.count()).toBe(1);
  });

  it("refuses an oversized message with PAYLOAD_TOO_LARGE", async () => {
    const alice = await signUp("alice");
    const client = httpClient(alice.cookie);
    const error = await client.projects.create.mutate({ name: "x".repeat(MAX_BODY * 2) }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe("PAYLOAD_TOO_LARGE");
    expect(await store.db.project.count()).toBe(0);
  });
});
