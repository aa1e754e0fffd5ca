import { TRPCError } from "@trpc/server";

/** The signed-in user as procedures see it (`ctx.user`). */
export interface AuthUser {
  id: string;
  email: string;
  name: string;
  emailVerified: boolean;
  image: string | null;
  /** "user" unless an admin set it; checked by `tether.admin` / `tether.role(...)`. */
  role: string;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * The session a call was authenticated by (`ctx.session`). Its token is left out: procedures
 * never need it, and a context that leaks into a response must not carry a credential.
 */
export interface AuthSession {
  id: string;
  userId: string;
  expiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
  ipAddress: string | null;
  userAgent: string | null;
}

/** What `createTetherAuth().createContext` returns: `{ user, session }`, both null when anonymous. */
export interface AuthContext {
  user: AuthUser | null;
  session: AuthSession | null;
  /** The caller's address (rate-limit key of anonymous callers). */
  ip?: string | null;
}

/** The minimum Tether's guards and session checks read from a context. */
export interface IdentityLike {
  user?: { id: string; role?: string | null } | null;
  session?: { id: string; expiresAt: Date | string | number } | null;
}

type UserOf<Ctx> = Ctx extends { user?: infer U } ? U : never;

/**
 * A context after `tether.authed`: `user` non-null. (`session` keeps its type: contexts made by
 * hand for server-side calls may carry a user without a session.)
 */
export type Authed<Ctx> = { user: NonNullable<UserOf<Ctx>> };

/** The user of a context, or UNAUTHORIZED. */
export function requireUser(ctx: unknown): { id: string; role?: string | null } {
  const user = (ctx as IdentityLike | null)?.user;
  if (!user) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
  return user;
}

/** The user of a context if its role is one of `roles`; UNAUTHORIZED when anonymous, FORBIDDEN otherwise. */
export function requireRole(ctx: unknown, roles: readonly string[]): { id: string; role?: string | null } {
  const user = requireUser(ctx);
  if (!roles.includes(user.role ?? "")) throw new TRPCError({ code: "FORBIDDEN", message: `requires role ${roles.join(" or ")}` });
  return user;
}

export function sessionExpiry(session: { expiresAt: Date | string | number }): number {
  const value = session.expiresAt;
  return value instanceof Date ? value.getTime() : typeof value === "number" ? value : Date.parse(value);
}
