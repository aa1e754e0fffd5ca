import { TRPCError } from "@trpc/server";
import { decodeImportBlobMeta } from "loro-crdt";
import type { RecordedRun } from "../access/index.ts";
import type { SessionGuard } from "../auth/index.ts";
import type { ChangeFeed } from "../feed/index.ts";
import type { SubscriptionLimits } from "../limits/index.ts";
import type { Logger } from "../log/index.ts";
import { clientProperty } from "../policies/index.ts";
import type { ModelMeta, SchemaMeta } from "../schema/index.ts";
import type { SqlClient } from "../store/index.ts";
import { badRequest, base64DecodedLength, decodeBase64, decodeVersion, encodeBase64, encodeVersion, notFound } from "./codec.ts";
import { deletionTriggerSql, hasDeletionTrigger, type CrdtSql } from "./docStore.ts";
import { DocWriter } from "./docWriter.ts";
import { DocHub } from "./hub.ts";
import { CrdtRelay } from "./relay.ts";
import { resolveTarget, type DocTarget } from "./target.ts";
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
  /**
   * May `ctx` update `row` of `model` under its policy (the row as the caller reads it)? Absent:
   * every visible row is writable (no policies).
   */
  mayUpdate?: (ctx: object, db: unknown, model: string, row: Record<string, unknown>) => Promise<boolean>;
  /** Timers for the projection debounce (tests inject fake ones). */
  timers?: { set: (fn: () => void, ms: number) => unknown; clear: (handle: unknown) => void };
}

/** The part of a Prisma model delegate the CRDT procedures use. */
interface Delegate {
  findFirst(args: { where: Record<string, unknown>; select?: Record<string, boolean> }): Promise<unknown>;
}

function delegateOf(db: unknown, model: ModelMeta): Delegate {
  const delegate = (db as Record<string, Delegate | undefined>)[clientProperty(model.name)];
  if (!delegate) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: `no Prisma delegate for ${model.name}` });
  return delegate;
}

/**
 * CRDT documents of `@crdt` fields: the three procedures' work (`pull`, `push`, `stream`), the
 * node's one copy of each document, group commit, the debounced projection and the stream hub.
 *
 * A push: size and Loro header checked (no import), the caller's cached write verdict, then
 * relayed at once to the document's subscribers on this node and (NOTIFY) on the others, then
 * queued for the document's next group commit; its answer comes after COMMIT (durable).
 */
export function createCrdt(deps: CrdtDeps) {
  const options: Required<CrdtOptions> = { ...DEFAULT_CRDT_OPTIONS, ...deps.options };
  const installed = new Set<string>();
  const storeSql: CrdtSql = deps.sql;

  /** Deleting a row deletes its documents: a trigger per CRDT model, installed on first use. */
  async function ensureDeletionTrigger(t: DocTarget): Promise<void> {
    if (installed.has(t.model.name)) return;
    if (!(await hasDeletionTrigger(storeSql, t.model))) {
      await deps.sql.transaction(async (tx) => {
        for (const statement of deletionTriggerSql(t.model)) await tx.query(statement);
      });
    }
    installed.add(t.model.name);
  }

  const visible = (db: unknown, t: DocTarget) =>
    delegateOf(db, t.model).findFirst({ where: { [t.pk.name]: t.pkValue }, select: { [t.pk.name]: true } });

  /** The write check, run through the caller's policy-scoped client (its reads recorded). */
  async function writable(db: unknown, ctx: object, t: DocTarget): Promise<"yes" | "hidden" | "refused"> {
    if (!deps.mayUpdate) return (await visible(db, t)) ? "yes" : "hidden";
    const row = (await delegateOf(db, t.model).findFirst({ where: { [t.pk.name]: t.pkValue } })) as Record<string, unknown> | null;
    if (!row) return "hidden";
    return (await deps.mayUpdate(ctx, db, t.model.name, row)) ? "yes" : "refused";
  }

  let hub: DocHub;
  const writer = new DocWriter({
    sql: deps.sql,
    schema: deps.schema,
    log: deps.log,
    options,
    committed: (sd) => hub.committed(sd),
    ensureTrigger: ensureDeletionTrigger,
    setTimer: deps.timers?.set,
    clearTimer: deps.timers?.clear,
  });

  hub = new DocHub({
    sql: deps.sql,
    schema: deps.schema,
    log: deps.log,
    feed: deps.feed,
    docs: writer.docs,
    load: (sd) => writer.syncIn(sd),
    visible: async (db, t) => (await visible(db, t)) !== null,
    writable,
    access: deps.access,
    rowChanged: (sd) => writer.scheduleProjection(sd),
    lastLeft: (sd) => void writer.projectNow(sd.target.key),
    maxQueuedMessages: options.maxQueuedStreamMessages,
    maxQueuedBytes: options.maxQueuedStreamBytes,
    maxWriteChecks: options.maxWriteChecks,
    writeCheckIdleMs: options.writeCheckIdleMs,
  });

  const relayOn = options.relay ?? deps.sql.engine === "postgres";
  const relay = relayOn
    ? new CrdtRelay({
        sql: deps.sql,
        log: deps.log,
        deliver: (key, update) => {
          try {
            const meta = decodeImportBlobMeta(decodeBase64(update, "update"), false);
            hub.relay(key, update, meta.partialStartVersionVector, meta.partialEndVersionVector);
          } catch {
            // not a Loro update: a node of another version, or noise on the channel
          }
        },
      })
    : null;

  function checkUpdate(update: string): { bytes: Uint8Array; meta: ReturnType<typeof decodeImportBlobMeta> } {
    const tooLarge = () =>
      new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `update exceeds ${options.maxUpdateBytes} bytes` });
    if (base64DecodedLength(update) > options.maxUpdateBytes) throw tooLarge();
    const bytes = decodeBase64(update, "update");
    if (bytes.byteLength > options.maxUpdateBytes) throw tooLarge();
    if (bytes.byteLength === 0) throw badRequest("update is empty");
    try {
      // Header and checksum: a well-formed Loro update or snapshot, without importing it.
      return { bytes, meta: decodeImportBlobMeta(bytes, true) };
    } catch {
      throw badRequest("update is not a Loro update");
    }
  }

  let recovered: Promise<void> | null = null;

  return {
    options,

    /**
     * At node start: projects documents whose projection was due when a node stopped (a kill
     * loses no acknowledged edit, and the column catches up here), and starts the relay.
     */
    start(): Promise<void> {
      recovered ??= (async () => {
        await relay?.start().catch((error: unknown) => deps.log.warn({ err: (error as Error).message }, "crdt: relay listen failed"));
        const n = await writer.recover();
        if (n > 0) deps.log.info({ documents: n }, "crdt: projected documents left due by a stopped node");
      })();
      return recovered;
    },

    /** `$crdt.pull`: what the caller's version lacks, and the server's version. `db`: the query's `ctx.db`. */
    async pull(db: unknown, input: CrdtPullInput): Promise<CrdtUpdateMessage> {
      const t = resolveTarget(deps.schema, input);
      const from = decodeVersion(input.version);
      if (!(await visible(db, t))) throw notFound();
      const sd = writer.docs.get(t);
      return sd.run(async () => {
        const doc = await writer.syncIn(sd);
        if (!doc) throw notFound();
        return { update: encodeBase64(doc.export({ mode: "update", from })), version: encodeVersion(doc.oplogVersion()) };
      });
    },

    /** `$crdt.push`: checks, relay, group commit; resolves once the update is durable. */
    async push(ctx: object, input: CrdtPushInput): Promise<CrdtPushResult> {
      const t = resolveTarget(deps.schema, input);
      const { bytes, meta } = checkUpdate(input.update);
      await hub.mayWrite(t, ctx, deps.scope(ctx));
      hub.relay(t.key, input.update, meta.partialStartVersionVector, meta.partialEndVersionVector);
      relay?.send(t.key, input.update);
      const end = meta.partialEndVersionVector.toJSON() as Map<string, number>;
      return { version: await writer.push(t, bytes, end) };
    },

    /**
     * `$crdt.stream`: catch-up from `version`, then every update — relayed as it arrives, and
     * everything committed, on any node; NOT_FOUND when the caller cannot read the row, or as
     * soon as it no longer can.
     */
    async *stream(ctx: object, input: CrdtStreamInput, signal: AbortSignal): AsyncGenerator<CrdtUpdateMessage> {
      const t = resolveTarget(deps.schema, input);
      const from = decodeVersion(input.version);
      await ensureDeletionTrigger(t);
      if (relay) await relay.start().catch(() => undefined);
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

    /** Projects every document whose projection is due now (tests; shutdown does it too). */
    flushProjections: () => writer.flushProjections(),

    stats(): CrdtStats {
      const streamed = hub.stats();
      return {
        streamedDocs: streamed.docs,
        streamSubscribers: streamed.subscribers,
        streamQueuedMessages: streamed.queuedMessages,
        streamQueuedBytes: streamed.queuedBytes,
        streamFolds: hub.counters.folds,
        accessRechecks: streamed.rechecks,
        pushes: writer.counters.pushes,
        commits: writer.counters.commits,
        pushesInFlight: writer.counters.inFlight,
        projections: writer.counters.projections,
        compactions: writer.counters.compactions,
        reloads: hub.counters.reloads,
      };
    },

    async close(): Promise<void> {
      await writer.close();
      await relay?.close();
      await hub.close();
    },
  };
}

export type Crdt = ReturnType<typeof createCrdt>;
