import { randomBytes } from "node:crypto";
import type { Logger } from "../log/index.ts";
import { NotifyChannel } from "../notify/index.ts";
import type { SqlClient } from "../store/index.ts";

/** The NOTIFY channel pushed CRDT updates travel on between nodes (before they are durable). */
export const CRDT_CHANNEL = "tether_crdt";
/** Where an update too big for a NOTIFY payload waits for the other nodes (UNLOGGED, swept). */
export const CRDT_SPILL_TABLE = "_tether_crdt_spill";

/** `n`: sending node; `k`: document key; `u`: the update (base64). */
interface RelayMessage {
  n: string;
  k: string;
  u: string;
}

/**
 * Relay first, across nodes: each pushed update that passed its checks goes to the other nodes
 * through `pg_notify` as soon as it arrives (they hand it to their subscribers of the document),
 * without waiting for the commit and the change feed's read of it. A lost notification costs
 * latency only: the commit reaches every node through the change feed anyway.
 */
export class CrdtRelay {
  readonly nodeId = randomBytes(6).toString("hex");
  private readonly channel: NotifyChannel;

  constructor(options: { sql: SqlClient; log: Logger; deliver: (key: string, update: string) => void }) {
    this.channel = new NotifyChannel({
      sql: options.sql,
      log: options.log,
      channel: CRDT_CHANNEL,
      spillTable: CRDT_SPILL_TABLE,
      onMessage: (payload) => {
        let message: RelayMessage;
        try {
          message = JSON.parse(payload) as RelayMessage;
        } catch {
          return;
        }
        if (message.n === this.nodeId || typeof message.k !== "string" || typeof message.u !== "string") return;
        options.deliver(message.k, message.u);
      },
    });
  }

  start(): Promise<void> {
    return this.channel.start();
  }

  send(key: string, update: string): void {
    if (!this.channel.started) return; // nobody streams on this node yet: the feed still carries it
    this.channel.send(JSON.stringify({ n: this.nodeId, k: key, u: update } satisfies RelayMessage));
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}
