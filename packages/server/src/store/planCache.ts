/// <reference path="./prismaCompiler.d.ts" />
import * as compilerRuntime from "@prisma/client/runtime/query_compiler_bg.postgresql.mjs";

/**
 * A cache of Prisma's compiled query plans. Prisma's client engine turns every call into a JSON
 * request and compiles it to a query plan in WASM before running it; for the reactor, which runs
 * the same query of a group again and again with the same arguments, that compilation was a large
 * share of a re-execution's CPU. The plan depends only on the request text (and the schema the
 * compiler was built with), so an identical read request gets the plan compiled last time.
 *
 * Only reads are cached (writes may carry generated values and are not the hot path); a plan is
 * deep-frozen when cached, so a runtime that tried to change one would fail loudly, not corrupt
 * the next call. Limits are process-wide: Prisma itself shares one compiler class per provider.
 */
export interface PlanCacheConfig {
  /** Plans kept; the least recently used goes first. */
  maxEntries: number;
  /** Requests longer than this (JSON chars) are compiled every time: huge `in` lists are one-offs. */
  maxRequestChars: number;
  /** Sum of cached request lengths (chars): bounds the memory of the keys (plans are of the same order). */
  maxTotalChars: number;
}

export const DEFAULT_PLAN_CACHE: PlanCacheConfig = {
  maxEntries: 5_000,
  maxRequestChars: 16 * 1024,
  maxTotalChars: 16 * 1024 * 1024,
};

export interface PlanCacheStats {
  hits: number;
  misses: number;
  entries: number;
  totalChars: number;
}

interface CompilerPrototype {
  compile(request: string): unknown;
}

/** Read actions of Prisma's JSON protocol: the request starts `{"modelName":"X","action":"<a>"`. */
const READ_ACTION = /^\{"modelName":"[^"]*","action":"(findMany|findFirst|findFirstOrThrow|findUnique|findUniqueOrThrow|aggregate|groupBy|count)"/;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

class PlanCache {
  config: PlanCacheConfig = DEFAULT_PLAN_CACHE;
  enabled = false;
  /** Per compiler instance (one per PrismaClient connection: its schema and provider). */
  private readonly perCompiler = new WeakMap<object, Map<string, unknown>>();
  readonly stats: PlanCacheStats = { hits: 0, misses: 0, entries: 0, totalChars: 0 };

  compile(compiler: object, request: string, compile: (request: string) => unknown): unknown {
    if (!this.enabled || request.length > this.config.maxRequestChars || !READ_ACTION.test(request)) return compile(request);
    let plans = this.perCompiler.get(compiler);
    if (!plans) this.perCompiler.set(compiler, (plans = new Map()));
    const cached = plans.get(request);
    if (cached !== undefined) {
      // Re-inserted: a Map iterates in insertion order, so its first key is the least recently used.
      plans.delete(request);
      plans.set(request, cached);
      this.stats.hits += 1;
      return cached;
    }
    this.stats.misses += 1;
    const plan = deepFreeze(compile(request));
    plans.set(request, plan);
    this.stats.entries += 1;
    this.stats.totalChars += request.length;
    while (plans.size > 0 && (plans.size > this.config.maxEntries || this.stats.totalChars > this.config.maxTotalChars)) {
      const oldest = plans.keys().next().value as string;
      plans.delete(oldest);
      this.stats.entries -= 1;
      this.stats.totalChars -= oldest.length;
    }
    return plan;
  }
}

const cache = new PlanCache();
let installed = false;

/**
 * Turns the plan cache on with `config` (merged over DEFAULT_PLAN_CACHE), or off with `false`.
 * Process-wide, like Prisma's compiler: the last store opened decides.
 */
export function configurePlanCache(config: Partial<PlanCacheConfig> | false): void {
  cache.enabled = config !== false;
  if (config !== false) cache.config = { ...DEFAULT_PLAN_CACHE, ...config };
  if (installed || !cache.enabled) return;
  installed = true;
  const prototype = compilerRuntime.QueryCompiler.prototype as CompilerPrototype;
  const compile = prototype.compile;
  prototype.compile = function (this: object, request: string) {
    return cache.compile(this, request, (r) => compile.call(this, r));
  };
}

export function planCacheStats(): PlanCacheStats {
  return { ...cache.stats };
}
