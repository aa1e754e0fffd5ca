export { applyPolicies, clientProperty, PolicyEngine } from "./applyPolicies.ts";
export type { PolicyEngineOptions } from "./applyPolicies.ts";
export { policyScope, runWithPolicyScope, withoutPolicies } from "./scope.ts";
export type { PolicyScope } from "./scope.ts";
export { unscopedRawSql } from "./rawSql.ts";
export type { RawSql } from "./rawSql.ts";
export type { Condition } from "./condition.ts";
export { denyAll } from "./types.ts";
export type {
  AnyModelPolicy,
  MaybePromise,
  ModelKey,
  ModelPolicy,
  Policies,
  PolicyContext,
  PolicyDb,
  PolicyOptions,
  ReadRule,
  RowOf,
  WhereOf,
} from "./types.ts";
