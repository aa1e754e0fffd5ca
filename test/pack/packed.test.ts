// The packages as published: build each one (dist/: ESM JS + .d.ts), pack them as npm would
// publish them (scripts/pack-packages.mjs), install the tarballs into a fresh app in a temp folder
// outside the repo — offline, from this machine's npm cache — then do what a user does: generate
// the Prisma client and Tether's metadata, build the app's TypeScript with tsc against the packed
// declarations, and run the README's quickstart (test/pack/app/src/main.ts): store on PGlite,
// migrate, a query and a mutation, the Node server, a core client watching the query live over
// WebSocket, and the mutation arriving live.
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const bin = (name: string) => join(repoRoot, "node_modules", ".bin", name);
const work = mkdtempSync(join(tmpdir(), "tether-packed-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Manifest {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  overrides?: Record<string, unknown>;
}
const manifest = (path: string): Manifest => JSON.parse(readFileSync(join(repoRoot, path), "utf8")) as Manifest;

/** The environment without npm's per-run settings (npm test sets npm_config_*, npm_package_*…). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith("npm_")));
  return { ...env, ...extra };
}

/** The app's package.json: the tarballs, plus what its own code imports, at the repo's versions. */
function appManifest(tarballs: Record<string, string>): string {
  const root = manifest("package.json");
  const server = manifest("packages/server/package.json");
  const client = manifest("packages/client/package.json");
  const version = (name: string) =>
    server.dependencies?.[name] ?? client.devDependencies?.[name] ?? root.devDependencies?.[name] ?? fail(name);
  const thirdParty = ["zod", "ws", "@prisma/client", "@trpc/client", "@trpc/server", "react", "typescript", "@types/node", "@types/ws"];
  return JSON.stringify(
    {
      name: "tether-packed-app",
      private: true,
      type: "module",
      dependencies: {
        ...Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`])),
        ...Object.fromEntries(thirdParty.map((name) => [name, version(name)])),
      },
      // The repo's own overrides (@trpc/tanstack-react-query pins an older @trpc/server peer).
      overrides: root.overrides,
    },
    null,
    2,
  );
}

/**
 * `npm install --offline` resolves each third-party version through its registry metadata in the
 * npm cache. A machine that only ran `npm ci` (tarballs by lockfile, no metadata), or whose cache
 * holds only abbreviated metadata (what `npm install` with a lockfile fetches), cannot do that;
 * there the app gets the tarballs extracted into node_modules/@tether and every other package
 * linked from the repo's node_modules — the same versions, still nothing fetched, but then the
 * packed manifests' dependency lists are not what installed the third-party packages (said on stderr).
 */
async function installOffline(app: string, tarballs: Record<string, string>): Promise<void> {
  const npm = process.env.TETHER_PACK_INSTALL === "links"
    ? Promise.reject(new Error("ENOTCACHED (TETHER_PACK_INSTALL=links)"))
    : run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: app, env: cleanEnv() });
  try {
    await npm;
    return;
  } catch (error) {
    // npm's arborist asks for full registry metadata; a cache holding only the abbreviated kind
    // fails as ENOTCACHED, or (when the package is a peer of a packed one) as ERESOLVE over a
    // package it could not read ("Found: name@undefined"). A real conflict names a version.
    const stderr = String((error as { stderr?: string }).stderr ?? error);
    if (!stderr.includes("ENOTCACHED") && !/Found: \S+@undefined/.test(stderr)) throw error;
    console.warn("packed.test: the npm cache lacks registry metadata; linking the repo's node_modules for third-party packages");
  }
  const modules = join(app, "node_modules");
  rmSync(modules, { recursive: true, force: true });
  mkdirSync(join(modules, "@tether"), { recursive: true });
  for (const entry of readdirSync(join(repoRoot, "node_modules"))) {
    if (entry === "@tether" || entry === ".package-lock.json") continue;
    symlinkSync(join(repoRoot, "node_modules", entry), join(modules, entry));
  }
  for (const [name, file] of Object.entries(tarballs)) {
    const into = join(modules, name);
    mkdirSync(into);
    await run("tar", ["xzf", file, "-C", into, "--strip-components=1"]);
  }
}

function fail(name: string): never {
  throw new Error(`no version of ${name} in the repo's manifests`);
}

it("the packed packages install into a fresh app, typecheck, and run the quickstart live", async () => {
  // 1. Build: the three compile independently (in the repo @tether/protocol resolves to its sources).
  await Promise.all(
    ["protocol", "server", "client"].map((pkg) =>
      run(bin("tsc"), ["-p", join(repoRoot, "packages", pkg, "tsconfig.build.json")], { cwd: repoRoot }),
    ),
  );

  // 2. Pack as published.
  const packed = join(work, "packed");
  const { stdout: packOut } = await run(process.execPath, [join(repoRoot, "scripts", "pack-packages.mjs"), packed], { env: cleanEnv() });
  const tarballs = Object.fromEntries(packOut.trim().split("\n").map((line) => line.split("\t") as [string, string]));
  expect(Object.keys(tarballs).sort()).toEqual(["@tether/client", "@tether/protocol", "@tether/server"]);

  // 3. A fresh app outside the repo, installed offline from the npm cache (no install scripts:
  //    Prisma's would try to download engines; the app uses its JS engines).
  const app = join(work, "app");
  cpSync(join(repoRoot, "test", "pack", "app"), app, { recursive: true });
  writeFileSync(join(app, "package.json"), appManifest(tarballs));
  await installOffline(app, tarballs);
  const installed = realpathSync(join(app, "node_modules", "@tether", "server"));
  expect(installed.startsWith(realpathSync(app))).toBe(true); // a copy from the tarball, not a link into the repo
  expect(existsSync(join(installed, "src"))).toBe(false);
  expect(existsSync(join(installed, "dist", "index.d.ts"))).toBe(true);

  // 4. Prisma's client and Tether's metadata (the generator is the installed package's bin),
  //    with the repo's Prisma CLI on its JS engines: nothing downloaded.
  await run(bin("prisma"), ["generate"], {
    cwd: app,
    env: cleanEnv({ DATABASE_URL: "postgresql://unused/unused", CHECKPOINT_DISABLE: "1", PRISMA_HIDE_UPDATE_MESSAGE: "1" }),
  });

  // 5. tsc with the app's own TypeScript and NodeNext resolution: every @tether/* type comes from
  //    the installed tarballs' .d.ts (a type error fails here, with the compiler's message).
  await run(join(app, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], { cwd: app }).catch((error: { stdout?: string }) => {
    throw new Error(`tsc failed in the packed app:\n${error.stdout ?? String(error)}`);
  });

  // 5b. The same without skipLibCheck: Tether's own declarations type-check strictly (the server's
  //     import pg's types, so @types/pg is its dependency). Some libraries whose types it exposes do
  //     not (pg-boss, PGlite, better-auth: docs/nextjs.md keeps skipLibCheck for them).
  const strict = await run(join(app, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json", "--noEmit", "--skipLibCheck", "false"], { cwd: app })
    .then(() => "")
    .catch((error: { stdout?: string }) => error.stdout ?? String(error));
  expect(strict.split("\n").filter((line) => line.includes("error TS") && line.includes("@tether/"))).toEqual([]);

  // 6. Run it: the quickstart prints what the live query showed, in order.
  const { stdout } = await run(process.execPath, [join(app, "dist", "main.js")], { cwd: app, env: cleanEnv({ TETHER_LOG_LEVEL: "silent" }) });
  const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as { added: string; seen: string[][] };
  expect(result.added).toBe("Hello");
  expect(result.seen[0]).toEqual([]);
  expect(result.seen.at(-1)).toEqual(["Hello"]);
}, 600_000);
