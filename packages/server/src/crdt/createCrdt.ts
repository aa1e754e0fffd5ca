import { TRPCError } from "@trpc/server";
import { decodeImportBlobMeta, type LoroDoc } from "loro-crdt";
import type { RecordedRun } from "../access/index.ts";
import type { SessionGuard } from "../auth/index.ts";
import type { ChangeFeed } from "../feed/index.ts";
import type { SubscriptionLimits } from "../limits/index.ts";
import type { Logger } from "../log/index.ts";
import { clientProperty, unscopedRawSql } from "../policies/index.ts";
import type { ModelMeta, SchemaMeta } from "../schema/index.ts";
import type { SqlClient } from "../store/index.ts";
import { badRequest, base64DecodedLength, decodeBase64, decodeVersion, encodeBase64, encodeVersion, notFound } from "./codec.ts";
import { DocCache, deletionTriggerSql, editDoc, hasDeletionTrigger, loadDoc, readColumn, type CrdtSql } from "./docStore.ts";
import { DocHub } from "./hub.ts";
import { columnMatches, projection, resolveTarget, type DocTarget } from "./target.ts";
import {
  DEFAULT_CRDT_OPTIONS,
  type CrdtOptions,
  type CrdtPullInput,
  type CrdtPushInput,
  type CrdtPushResult,
  type CrdtStats,
  type CrdtStreamInput,
  type CrdtUpdateMessage,
} from "./types.ts";

export interface CrdtDeps {
  sql: SqlClient;
  schema: SchemaMeta;
  log: Logger;
  options?: CrdtOptions;
  /** The node's change feed (the reactor's). */
  feed: () => Promise<ChangeFeed>;
  /**
   * Runs a check as `ctx`'s call with the policy-scoped, read-tracking client (as a live query
   * runs): a stream's readability is re-checked when a change touches what it read.
   */
  access: RecordedRun;
  /** The subscriber's sharing scope (user): one readability check per scope and change. */
  scope: (ctx: object) => string;
  guard?: SessionGuard | null;
  subscriptionLimits?: SubscriptionLimits;
}

/** The part of a Prisma model delegate the CRDT procedures use. */
interface Delegate {
  findFirst(args: { where: Record<string, unknown>; select: Record<string, boolean> }): Promise<unknown>;
  update(args: { where: Record<string, unknown>; data: Record<string, unknown>; select: Record<string, boolean> }): Promise<unknown>;
}

function delegateOf(db: unknown, model: ModelMeta): Delegate {
  const delegate = (db as Record<string, Delegate | undefined>)[clientProperty(model.name)];
  if (!delegate) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: `no Prisma delegate for ${model.name}` });
  return delegate;
}


const isPrismaNotFound = (error: unknown) => (error as { code?: unknown } | null)?.code === "P2025";

/**
 * CRDT documents of `@crdt` fields: the three procedures' work (`pull`, `push` in the mutation's
 * transaction, `stream`), the sidecar store and the node's stream hub.
 */
export function createCrdt(deps: CrdtDeps) {
  const options: Required<CrdtOptions> = { ...DEFAULT_CRDT_OPTIONS, ...deps.options };
  const cache = new DocCache(options.cachedDocs);
  const counters = { pushes: 0, compactions: 0 };
  const installed = new Set<string>();
  const storeSql: CrdtSql = deps.sql;

  /** Deleting a row deletes its documents: a trigger per CRDT model, installed on first use. */
  async function ensureDeletionTrigger(sql: CrdtSql, model: ModelMeta, remember: boolean): Promise<void> {
    if (installed.has(model.name)) return;
    if (await hasDeletionTrigger(sql, model)) {
      installed.add(model.name); // seen before creating it here: someone committed it
      return;
    }
    for (const statement of deletionTriggerSql(model)) await sql.query(statement);
    // Inside a mutation the transaction may still roll back: only a committed install counts.
    if (remember) installed.add(model.name);
  }

  const visible = (db: unknown, t: DocTarget) =>
    delegateOf(db, t.model).findFirst({ where: { [t.pk.name]: t.pkValue }, select: { [t.pk.name]: true } });


  /** Reconciles the stored document with a column written by something else (own transaction). */
  async function reconcile(t: DocTarget): Promise<void> {
    await ensureDeletionTrigger(storeSql, t.model, true);
    await deps.sql.transaction((tx) => editDoc(tx, t, cache, options, () => undefined));
  }

  /** The committed document, reconciled with its column first if they differ; null if the row is gone. */
  async function read(t: DocTarget): Promise<LoroDoc | null> {
    const doc = await loadDoc(storeSql, t);
    const row = await readColumn(storeSql, t, false);
    if (!row) return null;
    if (columnMatches(t, doc, row.value)) return doc;
    await reconcile(t);
    return loadDoc(storeSql, t);
  }

  const hub = new DocHub({
    sql: deps.sql,
    schema: deps.schema,
    log: deps.log,
    feed: deps.feed,
    read,
    visible: async (db, t) => (await visible(db, t)) !== null,
    access: deps.access,
    reconcile,
    maxQueuedMessages: options.maxQueuedStreamMessages,
    maxQueuedBytes: options.maxQueuedStreamBytes,
  });

  function checkUpdateSize(update: string): Uint8Array {
    const tooLarge = () =>
      new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `update exceeds ${options.maxUpdateBytes} bytes` });
    if (base64DecodedLength(update) > options.maxUpdateBytes) throw tooLarge();
    const bytes = decodeBase64(update, "update");
    if (bytes.byteLength > options.maxUpdateBytes) throw tooLarge();
    if (bytes.byteLength === 0) throw badRequest("update is empty");
    try {
      decodeImportBlobMeta(bytes, true); // header and checksum, before any database work
    } catch {
      throw badRequest("update is not a Loro update");
    }
    return bytes;
  }

  return {
    options,

    /** `$crdt.pull`: what the caller's version lacks, and the server's version. `db`: the query's `ctx.db`. */
    async pull(db: unknown, input: CrdtPullInput): Promise<CrdtUpdateMessage> {
      const t = resolveTarget(deps.schema, input);
      const from = decodeVersion(input.version);
      if (!(await visible(db, t))) throw notFound();
      await ensureDeletionTrigger(storeSql, t.model, true);
      const doc = await read(t);
      if (!doc) throw notFound();
      return { update: encodeBase64(doc.export({ mode: "update", from })), version: encodeVersion(doc.oplogVersion()) };
    },

    /**
     * `$crdt.push`, inside the mutation's transaction (`db` = its `ctx.db`): import, log, project
     * into the column through `db` (so the update policy and change capture apply). Any error
     * rolls the whole transaction back.
     */
    async push(db: unknown, input: CrdtPushInput): Promise<CrdtPushResult> {
      const t = resolveTarget(deps.schema, input);
      const bytes = checkUpdateSize(input.update);
      const delegate = delegateOf(db, t.model);
      if (!(await visible(db, t))) throw notFound();
      const sql: CrdtSql = unscopedRawSql(db);
      await ensureDeletionTrigger(sql, t.model, false);
      const result = await editDoc(sql, t, cache, options, (doc) => {
        let pending: unknown;
        try {
          pending = doc.import(bytes).pending;
        } catch {
          throw badRequest("update could not be imported (malformed)");
        }
        if (pending) throw badRequest("update depends on changes the server does not have: pull first");
      });
      if (!result) throw notFound();
      // Taken now: the cached document may serve the next push once this transaction commits.
      const version = encodeVersion(result.doc.oplogVersion());
      try {
        await delegate.update({
          where: { [t.pk.name]: t.pkValue },
          data: { [t.field.name]: projection(t, result.doc) },
          select: { [t.pk.name]: true },
        });
      } catch (error) {
        cache.evict(t.key);
        if (isPrismaNotFound(error)) throw notFound();
        throw error;
      }
      counters.pushes += 1;
      if (result.compacted) counters.compactions += 1;
      return { version };
    },

    /**
     * `$crdt.stream`: catch-up from `version`, then every committed change, on any node; NOT_FOUND
     * when the caller cannot read the row, or as soon as it no longer can.
     */
    async *stream(ctx: object, input: CrdtStreamInput, signal: AbortSignal): AsyncGenerator<CrdtUpdateMessage> {
      const t = resolveTarget(deps.schema, input);
      const from = decodeVersion(input.version);
      await ensureDeletionTrigger(storeSql, t.model, true);
      const release = deps.subscriptionLimits?.acquire(ctx) ?? (() => undefined);
      const finished = new AbortController();
      try {
        // Aborted (reason: UNAUTHORIZED) when the subscriber's session ends, as for `$live`.
        const sessionEnded = deps.guard?.admit(ctx, finished.signal) ?? null;
        const stop = sessionEnded ? AbortSignal.any([signal, sessionEnded]) : signal;
        for await (const message of hub.subscribe(t, ctx, deps.scope(ctx), from, stop)) {
          if (sessionEnded?.aborted) break;
          yield message;
        }
        if (sessionEnded?.aborted) throw sessionEnded.reason;
      } finally {
        finished.abort();
        release();
      }
    },

    stats(): CrdtStats {
      const streamed = hub.stats();
      return {
        streamedDocs: streamed.docs,
        streamSubscribers: streamed.subscribers,
        streamQueuedMessages: streamed.queuedMessages,
        streamQueuedBytes: streamed.queuedBytes,
        streamFolds: hub.counters.folds,
        accessRechecks: streamed.rechecks,
        ...counters,
        reloads: hub.counters.reloads,
      };
    },

    close: () => hub.close(),
  };
}

export type Crdt = ReturnType<typeof createCrdt>;
