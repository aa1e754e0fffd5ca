import { TRPCError } from "@trpc/server";

export interface MutationSlotOptions {
  /**
   * Mutation transactions running at once on this node. Below the Postgres pool size (10 by
   * default), so reads, the change feed and CRDT work keep connections while writes queue here.
   */
  maxConcurrent: number;
  /** Longest a mutation waits here for a slot before SERVICE_UNAVAILABLE (retryable), ms. */
  maxWaitMs: number;
  /** Mutations waiting at once on this node; past it, SERVICE_UNAVAILABLE at once. */
  maxQueued: number;
}

export const DEFAULT_MUTATION_SLOTS: MutationSlotOptions = {
  maxConcurrent: 6,
  maxWaitMs: 10_000,
  maxQueued: 1_000,
};

interface Waiter {
  grant(): void;
  timer: NodeJS.Timeout;
}

/**
 * Bounds the mutation transactions a node runs at once. Mutations over the bound wait here rather
 * than in Prisma's connection wait (where, past `maxWait`, they fail with "Unable to start a
 * transaction in the given time"), and waiters are served round-robin by caller: one caller's
 * flood queues behind itself, not in front of everyone else's writes.
 */
export class MutationSlots {
  private readonly options: MutationSlotOptions;
  private running = 0;
  private queued = 0;
  /** Waiters per caller key; Map order is the round-robin order. */
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(options: Partial<MutationSlotOptions> = {}) {
    this.options = { ...DEFAULT_MUTATION_SLOTS, ...options };
  }

  /** Mutations running in a slot and waiting for one, now. */
  stats(): { running: number; queued: number } {
    return { running: this.running, queued: this.queued };
  }

  /** Runs `work` in a slot, waiting for one in `caller`'s turn. */
  async run<T>(caller: string, work: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.maxConcurrent) await this.wait(caller);
    else this.running += 1;
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private wait(caller: string): Promise<void> {
    if (this.queued >= this.options.maxQueued) {
      return Promise.reject(busy(`${this.queued} mutations are already waiting on this server`));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          this.remove(caller, waiter);
          reject(busy(`no mutation slot within ${this.options.maxWaitMs} ms`));
        }, this.options.maxWaitMs),
      };
      const list = this.waiting.get(caller);
      if (list) list.push(waiter);
      else this.waiting.set(caller, [waiter]);
      this.queued += 1;
    });
  }

  private remove(caller: string, waiter: Waiter): void {
    const list = this.waiting.get(caller);
    const index = list?.indexOf(waiter) ?? -1;
    if (!list || index < 0) return;
    list.splice(index, 1);
    this.queued -= 1;
    if (list.length === 0) this.waiting.delete(caller);
  }

  /** Hands the slot to the next caller in turn (the slot stays taken), or frees it. */
  private release(): void {
    const next = this.waiting.entries().next();
    if (next.done) {
      this.running -= 1;
      return;
    }
    const [caller, list] = next.value;
    const waiter = list.shift()!;
    this.queued -= 1;
    // The caller goes to the back of the turn order (or leaves it).
    this.waiting.delete(caller);
    if (list.length > 0) this.waiting.set(caller, list);
    waiter.grant();
  }
}

function busy(detail: string): TRPCError {
  return new TRPCError({ code: "SERVICE_UNAVAILABLE", message: `the server is busy (${detail}); retry the mutation shortly` });
}
