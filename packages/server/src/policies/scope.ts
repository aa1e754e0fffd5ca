import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Whose call a policy-scoped client is serving. One extended client serves every call (as the
 * ReadSet tracker does); the caller comes from the async context Tether's builders open around
 * each procedure, so no client is built per request.
 */
export interface PolicyScope {
  /** The caller's context, as `createContext` made it. */
  readonly ctx: object;
  /** The client the procedure has (`ctx.db`): inside a mutation, its transaction. */
  readonly db: unknown;
  /** Inside a mutation's transaction: a refused write check rolls everything back. */
  readonly transactional: boolean;
  /** Policies suspended: rules' own lookups and Tether's pre/post-image reads. */
  readonly bypass: boolean;
}

export const policyScope = new AsyncLocalStorage<PolicyScope>();

/** Runs `fn` as `ctx`'s call: every operation of a policy-scoped client inside it is scoped. */
export function runWithPolicyScope<T>(scope: Omit<PolicyScope, "bypass">, fn: () => T): T {
  return policyScope.run({ ...scope, bypass: false }, fn);
}

/**
 * Runs `fn` with policies suspended (system access on the same client / transaction). Awaited
 * inside: Prisma's promises are lazy and run the query only when awaited, so the await must
 * happen within the suspended scope.
 */
export async function withoutPolicies<T>(fn: () => T | PromiseLike<T>): Promise<T> {
  const scope = policyScope.getStore();
  if (!scope) return await fn();
  return policyScope.run({ ...scope, bypass: true }, async () => await fn());
}
