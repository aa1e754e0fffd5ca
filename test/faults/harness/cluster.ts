/**
 * A Postgres 15 cluster of the suite's own (never the machine's shared one): initdb into a temp
 * dir, started on a free port with its socket in that dir, so scenarios may restart it, crash it
 * (`-m immediate`) or kill its backends without touching anyone else's tests. We run as root and
 * initdb refuses root, so every pg binary runs as the `postgres` user over a dir it owns.
 */
import { execFile } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./ports.ts";

const run = promisify(execFile);
const BIN = process.env.FAULTS_PG_BIN ?? "/usr/lib/postgresql/15/bin";

export interface Cluster {
  port: number;
  /** Connection URL of database `db` (trust auth, superuser `postgres`). */
  url(db?: string): string;
  createDatabase(name: string): Promise<string>;
  /** `pg_ctl restart -m <mode>`: fast = clean shutdown, immediate = crash and recover. */
  restart(mode: "fast" | "immediate"): Promise<void>;
  /** Runs one statement as superuser on `db`. */
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[], db?: string): Promise<Row[]>;
  destroy(): Promise<void>;
}

function asPostgres(args: string[]) {
  // runuser keeps our environment; pg_ctl wants its own HOME-free world, so cd into the data dir.
  const uid = process.getuid?.() ?? 0;
  const command = uid === 0 ? ["runuser", ["-u", "postgres", "--", ...args]] : [args[0]!, args.slice(1)];
  return run(command[0] as string, command[1] as string[], { cwd: "/tmp", maxBuffer: 1 << 24 });
}

export async function startCluster(): Promise<Cluster> {
  const root = mkdtempSync(join(tmpdir(), "tether-faults-pg-"));
  if ((process.getuid?.() ?? 0) === 0) chownSync(root, 101, 104);
  const data = join(root, "data");
  const port = await freePort();
  await asPostgres([`${BIN}/initdb`, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const ctl = (...args: string[]) => asPostgres([`${BIN}/pg_ctl`, "-D", data, "-l", join(root, "log"), "-w", "-t", "60", ...args]);
  await ctl("start", "-o", options);
  const url = (db = "postgres") => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const query = async <Row,>(sql: string, params: unknown[] = [], db = "postgres"): Promise<Row[]> => {
    const client = new pg.Client({ connectionString: url(db) });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as Row[];
    } finally {
      await client.end();
    }
  };
  return {
    port,
    url,
    query,
    async createDatabase(name) {
      await query(`CREATE DATABASE "${name}"`);
      return url(name);
    },
    async restart(mode) {
      await ctl("restart", "-m", mode, "-o", options);
    },
    async destroy() {
      await ctl("stop", "-m", "immediate").catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
