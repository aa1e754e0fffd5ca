import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { betterAuth, type BetterAuthOptions } from "better-auth";
import { prismaAdapter } from "better-auth/adapters/prisma";
import { fromNodeHeaders, toNodeHandler } from "better-auth/node";
import type { Clock } from "@tether/protocol";
import { createLogger, type Logger } from "../log/index.ts";
import { findModel, type SchemaMeta } from "../schema/index.ts";
import type { PrismaLike, Store } from "../store/index.ts";
import type { ConnectionParams, TetherContextOptions } from "../context/index.ts";
import { betterAuthRateLimit, DEFAULT_AUTH_RATE_LIMITS, forwardSocketAddress, signInPerEmailLimit, type AuthRateLimits } from "./authRateLimits.ts";
import type { AuthContext, AuthSession, AuthUser } from "./identity.ts";
import { LiveSessions } from "./liveSessions.ts";
import { DEFAULT_SIGN_UP_TRANSACTION, withSignUpHook, type SignUpHook, type SignUpTransactionLimits } from "./signUpTransaction.ts";

export interface TetherAuthOptions<Client extends PrismaLike> {
  /** better-auth stores users, sessions, accounts and verifications through `store.db` (system access, no policies). */
  store: Store<Client>;
  /**
   * Model metadata (`generated/tether`): where the session table and its columns are, for the
   * change-feed watcher. Default: better-auth's names (`Session`, `id`, `expiresAt`, unmapped).
   */
  schema?: SchemaMeta;
  /** Signs cookies and hashes; at least 32 random characters, kept out of the repo (e.g. BETTER_AUTH_SECRET). */
  secret: string;
  /** The app's public origin (`https://app.example`); https makes cookies `Secure`. Default: taken from each request. */
  baseURL?: string;
  /** Where better-auth's HTTP endpoints live. Default "/api/auth". */
  basePath?: string;
  /** Origins allowed to call the auth endpoints besides `baseURL` (CSRF protection). */
  trustedOrigins?: string[];
  /** Session lifetime and refresh, seconds. Defaults: 7 days, refreshed when older than 1 day. */
  session?: { expiresIn?: number; updateAge?: number };
  /** Password rules. Defaults: better-auth's (8–128 characters). */
  password?: { minLength?: number; maxLength?: number };
  /**
   * better-auth's rate limiter (per IP, per endpoint) and Tether's per-account sign-in limit, on
   * in every mode: merged over {@link DEFAULT_AUTH_RATE_LIMITS}; `false` turns both off.
   */
  rateLimit?: Partial<AuthRateLimits> | false;
  /** Session model name in the Prisma schema. Default "Session". */
  sessionModel?: string;
  /**
   * Anything else better-auth accepts (plugins, social providers, hooks, email verification),
   * merged over Tether's settings. `database`, `secret` and telemetry stay Tether's.
   */
  betterAuth?: Omit<BetterAuthOptions, "database" | "secret" | "telemetry">;
  /**
   * Runs inside the transaction that creates a user (sign-up, a first OAuth sign-in), right after
   * the user's row: write or enqueue with `tx` (`tether.withJobs(jobs).inTransaction(tx, user)`)
   * and it commits with the sign-up, or vanishes with it. A throw fails the sign-up. Setting it
   * turns on the Prisma adapter's transactions: what better-auth wraps in `runWithTransaction`
   * (sign-up, user updates, account linking) becomes one database transaction (see
   * signUpTransaction.ts for why and the limits).
   */
  onSignUp?: SignUpHook;
  /** The sign-up transaction's limits when `onSignUp` is set; merged over {@link DEFAULT_SIGN_UP_TRANSACTION}. */
  signUpTransaction?: Partial<SignUpTransactionLimits>;
  log?: Logger;
  /**
   * The clock that ends live subscriptions at their session's `expiresAt`. Default: the system
   * clock (tests: a `ManualClock` from @tether/protocol, to reach an expiry without waiting).
   */
  clock?: Clock;
}

/** The connection param a WebSocket / SSE client sends its session token in. */
export const SESSION_TOKEN_PARAM = "token";

function buildAuth<Client extends PrismaLike>(options: TetherAuthOptions<Client>, log: Logger) {
  const { session, password } = options;
  const limits = options.rateLimit === false ? false : { ...DEFAULT_AUTH_RATE_LIMITS, ...options.rateLimit };
  const { onSignUp } = options;
  const db = onSignUp ? withSignUpHook(options.store.db, onSignUp, { ...DEFAULT_SIGN_UP_TRANSACTION, ...options.signUpTransaction }) : options.store.db;
  const settings = {
    // With an onSignUp hook, better-auth's transactional steps (sign-up above all) run in a real transaction (its Prisma
    // adapter opens none by default), so the hook's writes share the sign-up's fate.
    database: prismaAdapter(db as never, { provider: "postgresql", transaction: Boolean(onSignUp) }),
    secret: options.secret,
    baseURL: options.baseURL,
    basePath: options.basePath ?? "/api/auth",
    trustedOrigins: options.trustedOrigins,
    emailAndPassword: {
      enabled: true,
      minPasswordLength: password?.minLength,
      maxPasswordLength: password?.maxLength,
    },
    session: {
      expiresIn: session?.expiresIn,
      updateAge: session?.updateAge,
      // Every request reads the session row: a revoked session stops working at once. (A cookie
      // cache would let a signed-out session keep working until the cached copy expires.)
      cookieCache: { enabled: false },
    },
    user: {
      additionalFields: {
        // Not settable at sign-up (`input: false`): only the app (an admin procedure, a seed) sets it.
        role: { type: "string", required: false, defaultValue: "user", input: false },
      },
    },
    rateLimit: betterAuthRateLimit(limits),
    plugins: limits ? [signInPerEmailLimit(limits.signInPerEmail)] : [],
    // Nothing leaves the machine (better-auth's default is off too; kept explicit).
    telemetry: { enabled: false },
    logger: {
      level: "warn",
      log: (level, message, ...args) => {
        const fields = { args: args.length ? args : undefined };
        if (level === "error") log.error(fields, message);
        else if (level === "warn") log.warn(fields, message);
        else log.debug(fields, message);
      },
    },
  } satisfies BetterAuthOptions;
  const extra = options.betterAuth;
  return betterAuth({
    ...settings,
    ...extra,
    rateLimit: { ...settings.rateLimit, ...extra?.rateLimit },
    plugins: [...settings.plugins, ...(extra?.plugins ?? [])],
    telemetry: { enabled: false },
  } as typeof settings);
}

export type BetterAuthInstance = ReturnType<typeof buildAuth>;

/** Node or fetch-style request headers. */
export type HeadersLike = Headers | IncomingHttpHeaders;

export interface TetherAuth {
  /** The better-auth instance: `auth.api.signUpEmail`, `auth.api.revokeSession`, `auth.handler`, … */
  readonly auth: BetterAuthInstance;
  /** better-auth's fetch handler (Next.js route: `export const { GET, POST } = { GET: handler, POST: handler }`). */
  readonly handler: (request: Request) => Promise<Response>;
  /** Serves better-auth's endpoints under `basePath` for `createTetherServer({ extraRoutes })`. */
  readonly routes: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  readonly basePath: string;
  /** The watcher that ends live subscriptions and WebSocket contexts when their session ends. */
  readonly sessions: LiveSessions;
  /**
   * better-auth's credential tables (Session, Account, Verification): `initTether({ auth })`
   * makes them unreadable and unwritable through `ctx.db` unless the app gives them a policy.
   */
  readonly protectedModels: readonly string[];
  /** The session (and its user) a request's cookie names; null when absent, forged or expired. */
  sessionFromHeaders(headers: HeadersLike): Promise<{ user: AuthUser; session: AuthSession } | null>;
  /** The same from connection params (`{ token: <session cookie value> }`), for WebSocket / SSE clients without cookies. */
  sessionFromConnectionParams(params: ConnectionParams | null | undefined): Promise<{ user: AuthUser; session: AuthSession } | null>;
  /**
   * A `createContext` for `createTetherServer` / `nextRouteHandler`: `{ user, session, ip }` from
   * the connection params' token or the cookie header, on every transport. A WebSocket's context
   * is made once per connection; its session is watched so calls fail once it ends.
   */
  createContext(opts: TetherContextOptions): Promise<AuthContext>;
  /** The session cookie's name (`better-auth.session_token`, `__Secure-…` on https). */
  cookieName(): Promise<string>;
  close(): void;
}

/**
 * Identity for a Tether app, by better-auth with its Prisma adapter: email + password sign-up,
 * sign-in and sign-out, database sessions in a cookie, the same session usable over WebSocket
 * (cookie on the upgrade request, or a token in connection params). No password or token code of
 * Tether's own: hashing, cookies, CSRF checks and session storage are better-auth's.
 */
export function createTetherAuth<Client extends PrismaLike>(options: TetherAuthOptions<Client>): TetherAuth {
  const log = options.log ?? createLogger("tether:auth");
  if (options.secret.length < 32) throw new Error("createTetherAuth: secret must be at least 32 characters");
  const auth = buildAuth(options, log);
  const basePath = options.basePath ?? "/api/auth";
  const sessionModelName = options.sessionModel ?? "Session";
  const sessionModel = options.schema ? findModel(options.schema, sessionModelName) : undefined;
  if (options.schema && !sessionModel) throw new Error(`createTetherAuth: no ${sessionModelName} model in the schema`);
  const modelName = sessionModel?.name ?? sessionModelName;
  const delegate = (options.store.db as unknown as Record<string, { findMany(args: unknown): Promise<Array<{ id: string; expiresAt: Date }>> } | undefined>)[
    modelName.charAt(0).toLowerCase() + modelName.slice(1)
  ];
  if (!delegate) throw new Error(`createTetherAuth: the Prisma client has no ${modelName} model (see better-auth's schema in docs/security.md)`);
  const sessions = new LiveSessions({
    table: sessionModel?.table ?? modelName,
    idColumn: sessionModel?.fields.id?.column ?? "id",
    expiresAtColumn: sessionModel?.fields.expiresAt?.column ?? "expiresAt",
    lookup: async (ids) => {
      const rows = await delegate.findMany({ where: { id: { in: ids } }, select: { id: true, expiresAt: true } });
      return new Map(rows.map((r) => [r.id, r.expiresAt]));
    },
    log,
    clock: options.clock,
  });
  const nodeHandler = toNodeHandler(auth);

  async function sessionFromHeaders(headers: HeadersLike, setCookie?: (value: string) => void) {
    const webHeaders = headers instanceof Headers ? headers : fromNodeHeaders(headers);
    if (!webHeaders.get("cookie")) return null;
    let result: Awaited<ReturnType<typeof auth.api.getSession>> = null;
    try {
      const { headers: responseHeaders, response } = await auth.api.getSession({ headers: webHeaders, returnHeaders: true });
      result = response;
      // A refreshed session comes with a renewed cookie: pass it on where the transport can.
      for (const cookie of responseHeaders.getSetCookie()) setCookie?.(cookie);
    } catch (error) {
      log.debug({ err: error }, "session lookup refused");
      return null;
    }
    return result ? toIdentity(result.user, result.session) : null;
  }

  async function cookieName(): Promise<string> {
    return (await auth.$context).authCookies.sessionToken.name;
  }

  async function sessionFromConnectionParams(params: ConnectionParams | null | undefined) {
    const token = params?.[SESSION_TOKEN_PARAM];
    if (!token) return null;
    // The token is the session cookie's (signed) value: better-auth checks it exactly as a cookie.
    return sessionFromHeaders(new Headers({ cookie: `${await cookieName()}=${token}` }));
  }

  return {
    auth,
    handler: (request) => auth.handler(request),
    basePath,
    async routes(req, res) {
      const path = (req.url ?? "/").split("?")[0]!;
      if (path !== basePath && !path.startsWith(`${basePath}/`)) return false;
      forwardSocketAddress(req);
      await nodeHandler(req, res);
      return true;
    },
    sessions,
    protectedModels: [modelName, "Account", "Verification"].filter((name) => !options.schema || options.schema.models[name]),
    sessionFromHeaders: (headers) => sessionFromHeaders(headers),
    sessionFromConnectionParams,
    async createContext(opts) {
      const setCookie = (value: string) => {
        if (opts.runtime === "fetch") opts.resHeaders.append("set-cookie", value);
        else if (opts.res && !opts.res.headersSent) opts.res.appendHeader("set-cookie", value);
      };
      const identity = opts.connectionParams?.[SESSION_TOKEN_PARAM]
        ? await sessionFromConnectionParams(opts.connectionParams)
        : await sessionFromHeaders(opts.runtime === "fetch" ? opts.req.headers : opts.req.headers, setCookie);
      if (identity && opts.transport === "ws") sessions.hold(identity.session, opts.info.signal);
      return { user: identity?.user ?? null, session: identity?.session ?? null, ip: clientIp(opts) };
    },
    cookieName,
    close: () => sessions.close(),
  };
}

function toIdentity(user: Record<string, unknown>, session: Record<string, unknown>): { user: AuthUser; session: AuthSession } {
  return {
    user: {
      id: String(user.id),
      email: String(user.email),
      name: String(user.name),
      emailVerified: Boolean(user.emailVerified),
      image: (user.image as string | null | undefined) ?? null,
      role: typeof user.role === "string" ? user.role : "user",
      createdAt: new Date(user.createdAt as Date),
      updatedAt: new Date(user.updatedAt as Date),
    },
    session: {
      id: String(session.id),
      userId: String(session.userId),
      expiresAt: new Date(session.expiresAt as Date),
      createdAt: new Date(session.createdAt as Date),
      updatedAt: new Date(session.updatedAt as Date),
      ipAddress: (session.ipAddress as string | null | undefined) ?? null,
      userAgent: (session.userAgent as string | null | undefined) ?? null,
    },
  };
}

function clientIp(opts: TetherContextOptions): string | null {
  if (opts.runtime === "node") return opts.req.socket.remoteAddress ?? null;
  return null;
}
