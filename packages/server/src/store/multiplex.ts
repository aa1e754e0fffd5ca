/**
 * Statement multiplexing (Hasura's idea, for Postgres): the live executions of one reactor flush
 * that send the SAME SQL with different parameters — one query shape subscribed with different
 * inputs — run as ONE statement, each original a branch of a UNION ALL with its parameters
 * renumbered, and the rows are split back per caller:
 *
 *   SELECT * FROM (
 *     SELECT 0 AS "__tether_g", row_number() OVER ()::int AS "__tether_r", b.* FROM (<sql $1..$k>) b
 *     UNION ALL
 *     SELECT 1, row_number() OVER ()::int, b.* FROM (<sql $k+1..$2k>) b  …
 *   ) u ORDER BY 1, 2
 *
 * Each branch is the original statement verbatim, so each parameter is typed exactly as it was
 * alone and each branch returns exactly its own rows in its own order (row_number numbers the
 * rows as the branch produced them; an ORDER BY/LIMIT inside keeps the subquery from being
 * flattened). One round trip, one parse/plan, one pool connection instead of N.
 *
 * Only statements of calls that opted in (the reactor's executions, `multiplexQueries(signal)`)
 * and only a plain `SELECT` are batched; the batch is whatever arrived before the next
 * macrotask (setImmediate), which is one flush of the reactor. If the combined statement fails
 * for any reason but cancellation, every member runs again alone, so an error reaches exactly
 * the call that caused it. PGlite's adapter does not come here: one in-process connection has no
 * round trip to save, and its statements run one by one as before.
 */
export interface MultiplexConfig {
  /** Statements merged into one at most (more make several statements). */
  maxStatementsPerBatch: number;
  /** Parameters of one merged statement at most (Postgres' wire limit is 65,535). */
  maxParameters: number;
}

export const DEFAULT_MULTIPLEX: MultiplexConfig = {
  maxStatementsPerBatch: 100,
  maxParameters: 30_000,
};

const optedIn = new WeakSet<AbortSignal>();

/** Statements run under `signal` (withQuerySignal) may be merged with others of the same tick. */
export function multiplexQueries(signal: AbortSignal): void {
  optedIn.add(signal);
}

export function isMultiplexed(signal: AbortSignal): boolean {
  return optedIn.has(signal);
}

/** A pg query config as Prisma's adapter-pg sends it. */
interface QueryConfig {
  text: string;
  values?: unknown[];
  rowMode?: string;
  [key: string]: unknown;
}

interface PgResult {
  rows: unknown[][];
  fields: unknown[];
  rowCount: number | null;
  [key: string]: unknown;
}

/** The merge-able call, or null: `pool.query({ text, rowMode: "array" }, values)` of a lone SELECT. */
export function multiplexable(args: unknown[]): { config: QueryConfig; values: unknown[] } | null {
  const [config, second] = args;
  if (typeof config !== "object" || config === null) return null;
  const { text, rowMode } = config as QueryConfig;
  if (typeof text !== "string" || rowMode !== "array" || !/^\s*select\s/i.test(text) || text.includes(";")) return null;
  const values = Array.isArray(second) ? second : ((config as QueryConfig).values ?? []);
  return Array.isArray(values) ? { config: config as QueryConfig, values } : null;
}

/**
 * `sql` with every parameter `$n` renumbered to `$n+offset`. Quoted identifiers and string
 * literals are copied as they are (a `$1` inside one is text, not a parameter).
 */
export function renumberParameters(sql: string, offset: number): string {
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2; // doubled quote inside
          else break;
        } else j += 1;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === "$" && /[0-9]/.test(sql[i + 1] ?? "") && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? "")) {
      let j = i + 1;
      while (j < sql.length && /[0-9]/.test(sql[j]!)) j += 1;
      out += `$${Number(sql.slice(i + 1, j)) + offset}`;
      i = j;
      continue;
    }
    out += c;
    i += 1;
  }
  return out;
}

/** The merged statement of `count` copies of `sql`, each taking `parameters` parameters. */
export function mergedStatement(sql: string, count: number, parameters: number): string {
  const branches: string[] = [];
  for (let g = 0; g < count; g++) {
    branches.push(
      `SELECT ${g} AS "__tether_g", (row_number() OVER ())::int AS "__tether_r", "__tether_b".* FROM (${renumberParameters(sql, g * parameters)}) AS "__tether_b"`,
    );
  }
  return `SELECT * FROM (${branches.join(" UNION ALL ")}) AS "__tether_u" ORDER BY 1, 2`;
}

/** The merged result split back: rows of branch g, without the two bookkeeping columns. */
export function splitResult(result: PgResult, count: number): PgResult[] {
  const rows: unknown[][][] = Array.from({ length: count }, () => []);
  for (const row of result.rows) rows[row[0] as number]!.push(row.slice(2));
  const fields = result.fields.slice(2);
  return rows.map((own) => ({ ...result, rows: own, rowCount: own.length, fields }));
}

interface Member {
  config: QueryConfig;
  values: unknown[];
  signal: AbortSignal;
  resolve(result: unknown): void;
  reject(error: unknown): void;
  settled: boolean;
}

/** How one statement is run: `query(args, signal)` of cancellation.ts (connection, cancel). */
export type RunStatement = (args: unknown[], signal: AbortSignal) => Promise<unknown>;

export interface Multiplexer {
  /** Queues a merge-able statement of an opted-in call; settles with its own result. */
  enqueue(statement: { config: QueryConfig; values: unknown[] }, signal: AbortSignal): Promise<unknown>;
}

/** Process-wide counters: statements sent, statements that went out merged, merged statements that failed and ran alone. */
export const multiplexStats = { statements: 0, merged: 0, fallbacks: 0 };

/**
 * `run(args, signal, fn)` runs one statement; `inContext(signal, fn)` runs fn as a call under
 * `signal` (so connection waits and cancellation apply to the merged statement).
 */
export function createMultiplexer(
  run: RunStatement,
  inContext: <T>(signal: AbortSignal, fn: () => T) => T,
  onWaitFanOut: (merged: AbortSignal, members: readonly AbortSignal[]) => void,
  config: MultiplexConfig = DEFAULT_MULTIPLEX,
): Multiplexer {
  let pending = new Map<string, Member[]>();
  let scheduled = false;
  const stats = multiplexStats;

  const settle = (member: Member, outcome: { result: unknown } | { error: unknown }) => {
    if (member.settled) return;
    member.settled = true;
    if ("result" in outcome) member.resolve(outcome.result);
    else member.reject(outcome.error);
  };

  const runAlone = (member: Member) => {
    stats.statements += 1;
    inContext(member.signal, () => run([member.config, member.values], member.signal)).then(
      (result) => settle(member, { result }),
      (error: unknown) => settle(member, { error }),
    );
  };

  const runMerged = (members: Member[]) => {
    for (const member of members) if (!member.settled && member.signal.aborted) runAlone(member); // fails at once
    const live = members.filter((m) => !m.settled && !m.signal.aborted);
    if (live.length === 0) return;
    if (live.length === 1) return runAlone(live[0]!);
    stats.statements += 1;
    stats.merged += live.length;
    const parameters = live[0]!.values.length;
    // Cancelled only when every member was abandoned: one timeout must not fail the others.
    const controller = new AbortController();
    let abandoned = 0;
    for (const member of live) {
      member.signal.addEventListener("abort", () => {
        settle(member, { error: member.signal.reason });
        if (++abandoned === live.length) controller.abort();
      }, { once: true });
    }
    onWaitFanOut(controller.signal, live.map((m) => m.signal));
    const { text: _text, values: _values, ...rest } = live[0]!.config;
    const merged = { ...rest, text: mergedStatement(live[0]!.config.text, live.length, parameters) };
    const values = live.flatMap((m) => m.values);
    inContext(controller.signal, () => run([merged, values], controller.signal)).then(
      (result) => {
        const parts = splitResult(result as PgResult, live.length);
        live.forEach((member, g) => settle(member, { result: parts[g] }));
      },
      () => {
        if (controller.signal.aborted) return; // every member already settled by its abort
        // Whatever failed, each member alone decides its own outcome (its own error, exactly).
        stats.fallbacks += 1;
        for (const member of live) if (!member.settled) runAlone(member);
      },
    );
  };

  const flush = () => {
    scheduled = false;
    const batches = pending;
    pending = new Map();
    for (const members of batches.values()) {
      const perBatch = Math.max(1, Math.min(config.maxStatementsPerBatch, Math.floor(config.maxParameters / Math.max(1, members[0]!.values.length))));
      for (let i = 0; i < members.length; i += perBatch) runMerged(members.slice(i, i + perBatch));
    }
  };

  return {
    enqueue(statement, signal) {
      return new Promise((resolve, reject) => {
        const member: Member = { ...statement, signal, resolve, reject, settled: false };
        const key = `${statement.values.length}\u0000${statement.config.text}`;
        const list = pending.get(key);
        if (list) list.push(member);
        else pending.set(key, [member]);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}
