import { AsyncLocalStorage } from "node:async_hooks";
import type { SqlDriverAdapter, SqlDriverAdapterFactory, SqlQuery, SqlResultSet, Transaction } from "@prisma/driver-adapter-utils";

/**
 * The id of the transaction a mutation committed (read-your-writes: the client waits until its
 * live queries reflect it), learned without a round trip of its own.
 *
 * Asking for it from inside the transaction costs the mutation a statement and a turn of the
 * event loop between the procedure's last statement and COMMIT — on a busy node, a turn can be
 * long. Instead, a transaction started under `captureCommitXid` sends the question right in front
 * of Prisma's COMMIT on Postgres: the driver sends COMMIT as soon as the answer arrives, with no
 * turn of ours in between (PGlite, in process, asks just before its commit). The adapters Tether
 * builds are wrapped by `withCommitXidFactory`.
 */
interface Capture {
  xid: string | null;
  /** COMMIT went through the wrapped transaction (else the xid is unknown, not absent). */
  seen: boolean;
}

const captures = new AsyncLocalStorage<Capture>();

const XID_QUERY: SqlQuery = { sql: "SELECT pg_current_xact_id_if_assigned()::text AS xid", args: [], argTypes: [] };

/**
 * Runs `transact` (one Prisma interactive transaction) and tells the id of the transaction it
 * committed: null when it wrote nothing (no xid was assigned).
 */
export async function captureCommitXid<T>(transact: () => Promise<T>): Promise<{ value: T; xid: string | null }> {
  const capture: Capture = { xid: null, seen: false };
  const value = await captures.run(capture, transact);
  if (!capture.seen) throw new Error("the mutation's transaction committed outside Tether's driver adapter: its commit id is unknown");
  return { value, xid: capture.xid };
}

function capturing(tx: Transaction): Transaction {
  // PGlite's adapter commits by ending PGlite's own transaction (no COMMIT statement): ask first.
  if (tx.options.usePhantomQuery) {
    const commit = tx.commit.bind(tx);
    const rollback = tx.rollback.bind(tx);
    tx.commit = async () => {
      const capture = captures.getStore();
      if (capture) {
        let answer: SqlResultSet;
        try {
          answer = await tx.queryRaw(XID_QUERY);
        } catch (error) {
          await rollback(); // the transaction was aborted: nothing of it may commit
          throw error;
        }
        capture.xid = xidOf(answer);
        capture.seen = true;
      }
      return commit();
    };
    return tx;
  }
  const executeRaw = tx.executeRaw.bind(tx);
  tx.executeRaw = async (query) => {
    if (query.sql !== "COMMIT") return executeRaw(query);
    const capture = captures.getStore();
    // Sent together: the driver queues COMMIT behind the question.
    const [asked, committed] = await Promise.allSettled([capture ? tx.queryRaw(XID_QUERY) : Promise.resolve(null), executeRaw(query)]);
    // A failed question means the transaction was aborted, and Postgres then answers COMMIT with
    // a rollback: the mutation failed.
    const failure = asked.status === "rejected" ? asked : committed.status === "rejected" ? committed : null;
    if (failure) {
      // Prisma hands the connection back only after a COMMIT that succeeded: it would otherwise
      // stay checked out for good. The transaction is over either way (committed or rolled back).
      await tx.commit().catch(() => undefined);
      throw failure.reason;
    }
    if (capture && asked.status === "fulfilled" && asked.value) {
      capture.xid = xidOf(asked.value);
      capture.seen = true;
    }
    return (committed as PromiseFulfilledResult<number>).value;
  };
  return tx;
}

function xidOf(answer: SqlResultSet): string | null {
  const cell = answer.rows[0]?.[0];
  return typeof cell === "string" ? cell : null;
}

/** The adapter, with its interactive transactions reporting their commit id (see above). */
export function withCommitXid(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const startTransaction = adapter.startTransaction.bind(adapter);
  adapter.startTransaction = async (isolationLevel) => capturing(await startTransaction(isolationLevel));
  return adapter;
}

/** The same for an adapter factory (what PrismaClient's constructor takes): every adapter it connects. */
export function withCommitXidFactory<F extends SqlDriverAdapterFactory>(factory: F): F {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => withCommitXid(await connect());
  return factory;
}
