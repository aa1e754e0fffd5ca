// Found by the transformer red team (issue 16): fixed (the WebSocket decoder, the SSE link and the live query read a mismatch as a clear, permanent error).
/**
 * Mismatched transformers, and BigInt without a transformer, through the client core.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, makeClient, waitFor, watch, type Harness } from "./harness.ts";
import { mismatchCases } from "./mismatchCases.ts";

mismatchCases(["ws", "sse"]);

describe("no transformer: BigInt in a live result", () => {
  let h: Harness;
  beforeAll(async () => { h = await startServer("pglite"); });
  afterAll(async () => { await h?.close(); });
  for (const transport of ["ws", "sse"] as const) {
    it(`${transport}: BigInt arriving only in a later patch ends the subscription with UNPROCESSABLE_CONTENT`, async () => {
      const sensor = "late-" + transport;
      const c = makeClient(h.url, transport);
      const w = watch<any>(c, "readings.list", { sensor });
      await waitFor("live", () => w.statuses.includes("live"));
      await h.store.db.reading.create({ data: { sensor, takenAt: new Date(0), count: 7n, amount: "2" } });
      await waitFor("an error", () => w.errors.length > 0 || w.statuses.includes("error"), 10_000).catch(() => undefined);
      const seen = { statuses: w.statuses, errors: w.errors.map((e: any) => `${e?.data?.code} ${e?.message}`), last: w.last() };
      console.log(transport, JSON.stringify(seen));
      w.stop(); await c.close();
      expect(seen.errors.join()).toMatch(/UNPROCESSABLE_CONTENT.*BigInt/);
      // docs: "(at [0].count)" — the path of the row in the query's result, not of Tether's patch internals
      expect(seen.errors.join()).not.toContain(".upsert");
    });
  }
});
