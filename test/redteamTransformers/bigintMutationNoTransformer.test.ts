/**
 * Without a transformer, a mutation whose result holds a BigInt "fails with tRPC's own error"
 * (docs/transformers.md). Does the write stay committed while the caller is told it failed?
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engines } from "../support/databases.ts";
import { startServer, makeClient, type Harness } from "./harness.ts";

for (const engine of engines) {
  describe(`BigInt in a mutation result without a transformer (${engine})`, () => {
    let h: Harness;
    beforeAll(async () => { h = await startServer(engine); });
    afterAll(async () => { await h?.close(); });

    it("a mutation reported as failed leaves nothing behind", async () => {
      const c = makeClient(h.url, "ws");
      const outcome = await (c.trpc as any).readings.addPlain
        .mutate({ id: "nb1", sensor: "nb", takenAt: new Date(0).toISOString(), count: "5", amount: "1" })
        .then(() => "ok", (e: any) => `${e?.data?.code} ${e?.message}`);
      const rows = await h.store.db.reading.count({ where: { id: "nb1" } });
      console.log({ outcome, rows });
      await c.close();
      // Fixed: the mutation is refused before COMMIT with a typed error (nothing written).
      expect(outcome).toMatch(/UNPROCESSABLE_CONTENT.*BigInt/);
      // the caller was told the mutation failed; a retry would create it twice
      expect(rows).toBe(0);
    });
  });
}
