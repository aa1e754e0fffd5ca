/**
 * `createTetherAuth({ onSignUp(user, tx) })`: app code that runs in the very transaction that
 * creates a user, so what it writes or enqueues (`jobs.inTransaction(tx).enqueue("sendWelcome", …)`)
 * commits with the sign-up and disappears with its rollback.
 *
 * Why not better-auth's `databaseHooks.user.create`: in better-auth 1.7 `create.before` runs
 * before the user row exists (a row referencing the user fails its foreign key) and gets no handle
 * on the transaction, and `create.after` is queued to run after the commit
 * (`queueAfterTransactionHook`), outside it. And its Prisma adapter opens no transaction at all
 * unless told to (`prismaAdapter(db, { transaction: true })`). So Tether turns the adapter's
 * transactions on and hands it a Prisma client whose `user.create` — inside a transaction, the
 * transaction client's — runs the hook right after the insert, with that transaction client.
 */

/** The user row as better-auth just created it (the columns it selected; `id` always). */
export interface SignUpUser {
  id: string;
  email: string;
  name: string;
  [column: string]: unknown;
}

/**
 * Runs inside the sign-up's transaction, after the user's row is inserted and before better-auth
 * adds the credential account and session. `tx` is the Prisma interactive-transaction client:
 * write with it, enqueue jobs with it. A throw aborts the sign-up (better-auth answers 422,
 * nothing of it is kept). Do not use the store's own client in here: on PGlite (one connection)
 * a query outside the open transaction waits for it, forever.
 */
export type SignUpHook = (user: SignUpUser, tx: unknown) => Promise<void> | void;

/** Limits of the sign-up transaction (only when `onSignUp` is set; better-auth then runs sign-up in one). */
export interface SignUpTransactionLimits {
  /**
   * Longest the whole sign-up transaction may stay open: better-auth hashes the password (scrypt)
   * inside it, and `onSignUp` runs there too. Prisma's default (5 s) is short for a loaded machine.
   */
  timeoutMs: number;
  /** Longest a sign-up waits for a connection (PGlite: for the transaction ahead of it) before failing. */
  maxWaitMs: number;
}

export const DEFAULT_SIGN_UP_TRANSACTION: SignUpTransactionLimits = {
  timeoutMs: 15_000,
  maxWaitMs: 10_000,
};

type Fn = (...args: unknown[]) => unknown;
interface Delegate {
  create(args: unknown): Promise<unknown>;
}
interface TransactionCapable {
  $transaction(fn: (tx: unknown) => Promise<unknown>, options?: { timeout?: number; maxWait?: number }): Promise<unknown>;
}

/** A property of `target`, methods bound to it (a proxy must not become their `this`). */
function forward(target: object, property: string | symbol): unknown {
  const value = Reflect.get(target, property, target) as unknown;
  return typeof value === "function" ? (value as Fn).bind(target) : value;
}

/** The user delegate whose `create` runs `after(row)` (with the same transaction) before resolving. */
function hookedDelegate(delegate: Delegate, after: (row: unknown) => Promise<void>): Delegate {
  return new Proxy(delegate, {
    get(target, property) {
      if (property !== "create") return forward(target, property);
      return async (args: unknown) => {
        const row = await target.create(args);
        await after(row);
        return row;
      };
    },
  });
}

/**
 * The Prisma client better-auth's adapter gets when `onSignUp` is set. Its interactive
 * transactions (every sign-up, with `transaction: true`) hand out a transaction client whose
 * `userModel.create` runs the hook; a user created outside a transaction (an adapter call from
 * a plugin outside better-auth's `runWithTransaction`) gets one of its own, so the hook always
 * shares the insert's transaction.
 */
export function withSignUpHook<Client extends object>(db: Client, hook: SignUpHook, limits: SignUpTransactionLimits, userModel = "user"): Client {
  const client = db as unknown as TransactionCapable;
  const txOptions = { timeout: limits.timeoutMs, maxWait: limits.maxWaitMs };
  const run = (tx: unknown) => async (row: unknown) => hook(row as SignUpUser, tx);
  const inTransaction = (tx: object) =>
    new Proxy(tx, {
      get(target, property) {
        if (property !== userModel) return forward(target, property);
        return hookedDelegate(Reflect.get(target, property, target) as Delegate, run(target));
      },
    });
  return new Proxy(db, {
    get(target, property) {
      if (property === "$transaction") {
        return (arg: unknown, options?: object) =>
          typeof arg === "function"
            ? client.$transaction((tx) => (arg as Fn)(inTransaction(tx as object)) as Promise<unknown>, { ...txOptions, ...options })
            : (client.$transaction as Fn)(arg, options);
      }
      if (property !== userModel) return forward(target, property);
      const delegate = Reflect.get(target, property, target) as Delegate;
      return new Proxy(delegate, {
        get(d, p) {
          if (p !== "create") return forward(d, p);
          return (args: unknown) =>
            client.$transaction(async (tx) => {
              const row = await (tx as Record<string, Delegate>)[userModel]!.create(args);
              await run(tx)(row);
              return row;
            }, txOptions);
        },
      });
    },
  });
}
