/**
 * The Hocuspocus side of the deployment bench, as its own process: `@hocuspocus/server` 4.7 with
 * `@hocuspocus/extension-database` storing each document's Yjs state into the same Postgres
 * (table `hocuspocus_documents`), with Hocuspocus's default store debounce (2 s, at most 10 s):
 * updates are relayed to the document's other connections on receipt, and stored later — so a
 * SIGKILL loses the server's copy of the recent edits until the clients send them again.
 */
import { Database } from "@hocuspocus/extension-database";
import { Server } from "@hocuspocus/server";
import pg from "pg";
import { announceReady, childConfig } from "./processes.ts";

export interface HocuspocusServerConfig {
  url: string;
  port: number;
}

const config = childConfig<HocuspocusServerConfig>();
const pool = new pg.Pool({ connectionString: config.url, max: 4 });
await pool.query(`CREATE TABLE IF NOT EXISTS hocuspocus_documents (name text PRIMARY KEY, data bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);

const server = new Server({
  port: config.port,
  address: "127.0.0.1",
  quiet: true,
  stopOnSignals: false,
  extensions: [
    new Database({
      fetch: async ({ documentName }) => {
        const { rows } = await pool.query<{ data: Buffer }>(`SELECT data FROM hocuspocus_documents WHERE name = $1`, [documentName]);
        return rows[0] ? new Uint8Array(rows[0].data) : null;
      },
      store: async ({ documentName, state }) => {
        await pool.query(
          `INSERT INTO hocuspocus_documents (name, data) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = now()`,
          [documentName, Buffer.from(state)],
        );
      },
    }),
  ],
});
await server.listen();
announceReady({ port: server.address.port });

process.once("SIGTERM", () => {
  void (async () => {
    await server.destroy();
    await pool.end();
    process.exit(0);
  })();
});
