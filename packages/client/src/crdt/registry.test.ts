import type { AnyRouter } from "@trpc/server";
import { describe, expect, it } from "vitest";
import { createTetherClient } from "../core/client.ts";
import type { CrdtPersistence } from "./persistence.ts";
import { crdtSessionsOf } from "./registry.ts";

describe("crdtSessionsOf", () => {
  it("is the client's own registry, made on first use with createTetherClient's crdt options, and ends with it", async () => {
    const loads: string[] = [];
    // Never loads: the sessions stay before their stream, so no connection is needed.
    const persistence: CrdtPersistence = {
      load: (key) => {
        loads.push(key);
        return new Promise(() => undefined);
      },
      save: async () => undefined,
      remove: async () => undefined,
    };
    const client = createTetherClient<AnyRouter>({ url: "http://127.0.0.1:1/trpc", environment: null, crdt: { persistence } });
    const other = createTetherClient<AnyRouter>({ url: "http://127.0.0.1:1/trpc", environment: null, crdt: { persistence: null } });
    const sessions = crdtSessionsOf(client);
    expect(crdtSessionsOf(client)).toBe(sessions);
    expect(crdtSessionsOf(other)).not.toBe(sessions);
    const target = { model: "Note", id: "n1", field: "body" };
    const { session } = sessions.acquire(target);
    expect(loads).toEqual([session.key]);
    await client.close();
    expect(session.isDisposed).toBe(true);
    expect(() => sessions.acquire(target)).toThrow("CRDT sessions of a closed client");
    expect(() => crdtSessionsOf(client)).not.toThrow(); // still the same, closed registry
    await other.close();
  });
});
