/** A Node script as a user writes it: server with superjson, client core over WS without one (or the reverse). */
import superjson from "superjson";
import { startServer, makeClient, watch, waitFor } from "../harness.ts";
const reverse = process.argv[2] === "reverse";
const h = await startServer("pglite", reverse ? {} : { transformer: superjson });
await h.store.db.reading.create({ data: { id: "m1", sensor: "mm", takenAt: new Date(0), count: 1n, amount: "1.5" } });
const c = makeClient(h.url, "ws", reverse ? superjson : undefined);
const w = watch<any>(c, reverse ? "readings.noCount" : "readings.list", { sensor: "mm" });
const report = () => JSON.stringify({ statuses: [...new Set(w.statuses)], errors: w.errors.map((e: any) => `${e?.data?.code} ${e?.message}`) });
process.on("exit", (code) => console.log(`RESULT exit=${code} ${report()}`));
await waitFor("an error status", () => w.errors.length > 0, 8000).catch(() => undefined);
w.stop();
await c.close();
await h.close();
process.exit(0);
