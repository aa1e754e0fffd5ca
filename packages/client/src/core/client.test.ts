import type { AnyRouter } from "@trpc/server";
import { describe, expect, it } from "vitest";
import { createTetherClient, type ClientSlot } from "./client.ts";

const newClient = (options: { presence?: { clientId: string } } = {}) =>
  createTetherClient<AnyRouter>({ url: "http://127.0.0.1:1/trpc", environment: null, ...options });

describe("TetherClient.attach", () => {
  it("makes a slot's value once per client, with the client's options, and closes it with the client", async () => {
    const events: string[] = [];
    const slot: ClientSlot<{ clientId: string | undefined }> = {
      name: "things",
      make: (_client, options) => {
        events.push("make");
        return { clientId: options.presence?.clientId };
      },
      close: async (value) => void events.push(`close ${value.clientId}`),
    };
    const a = newClient({ presence: { clientId: "tab-a" } });
    const b = newClient({ presence: { clientId: "tab-b" } });
    const fromA = a.attach(slot);
    expect(a.attach(slot)).toBe(fromA);
    expect(fromA.clientId).toBe("tab-a");
    expect(b.attach(slot).clientId).toBe("tab-b");
    expect(events).toEqual(["make", "make"]);
    await a.close();
    expect(events).toEqual(["make", "make", "close tab-a"]);
    expect(() => a.attach({ ...slot })).toThrow("things of a closed client");
    await b.close();
    expect(events).toEqual(["make", "make", "close tab-a", "close tab-b"]);
  });
});
