export { RateLimits, memoryRateLimitStore, postgresRateLimitStore, redisRateLimitStore } from "./rateLimits.ts";
export type { PgPoolLike, RateLimitOptions, RateLimitRule, RateLimitStore, RedisLikeClient } from "./rateLimits.ts";
export { SubscriptionLimits } from "./subscriptionLimits.ts";
export type { SubscriptionLimitOptions } from "./subscriptionLimits.ts";
