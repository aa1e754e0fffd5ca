export { callerKey, DEFAULT_RATE_LIMITS, RateLimits, memoryRateLimitStore, postgresRateLimitStore, redisRateLimitStore } from "./rateLimits.ts";
export type { PgPoolLike, ProcedureKind, RateLimitOptions, RateLimitRule, RateLimitStore, RedisLikeClient } from "./rateLimits.ts";
export { DEFAULT_SUBSCRIPTION_LIMITS, SubscriptionLimits } from "./subscriptionLimits.ts";
export type { SubscriptionLimitOptions } from "./subscriptionLimits.ts";
export { boundedJson, DEFAULT_JSON_BOUNDS, jsonBoundsProblem } from "./boundedJson.ts";
export type { JsonBounds } from "./boundedJson.ts";
export { MutationSlots, DEFAULT_MUTATION_SLOTS } from "./mutationSlots.ts";
export type { MutationSlotOptions } from "./mutationSlots.ts";
export { illFormedTextAt, toStorableText, unstorableTextAt } from "./wellFormedText.ts";
