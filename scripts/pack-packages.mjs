#!/usr/bin/env node
// Packs @tether/protocol, @tether/server and @tether/client as they would be published:
// `node scripts/pack-packages.mjs <destination>` writes one tarball per package there.
//
// Inside the monorepo each package's `exports` point at its TypeScript sources, so tests, tsx and
// the demo (Next transpilePackages) run from source with no build step. A published package must
// point at dist/ instead. npm has no `publishConfig.exports` (pnpm and yarn do), so this script
// stages each package in a temporary folder with the published manifest — every export as
// { types, import, default } into dist/ (`default` lets CommonJS callers require() the ESM build on
// Node ≥ 20.19, e.g. tsx in an app without "type": "module"), `private` dropped, workspace
// dependencies pinned to the workspace's own version — and runs `npm pack` there. Run `npm run build` first.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The packages that are published, dependencies first. */
export const PUBLISHED_PACKAGES = ["protocol", "server", "client"];

/** `./src/adapters/node.ts` → `./dist/adapters/node` (no extension). */
function distStem(sourcePath) {
  if (!sourcePath.startsWith("./src/")) throw new Error(`export ${sourcePath} is not under ./src/`);
  return `./dist/${sourcePath.slice("./src/".length).replace(/\.tsx?$/, "")}`;
}

/** The manifest as published, from the workspace's package.json. */
export function publishedManifest(manifest, workspaceVersions) {
  const { private: _private, scripts: _scripts, devDependencies: _dev, ...published } = manifest;
  published.exports = Object.fromEntries(
    Object.entries(manifest.exports).map(([subpath, source]) => {
      const stem = distStem(source);
      return [subpath, { types: `${stem}.d.ts`, import: `${stem}.js`, default: `${stem}.js` }];
    }),
  );
  for (const field of ["dependencies", "peerDependencies"]) {
    if (!published[field]) continue;
    published[field] = Object.fromEntries(
      Object.entries(published[field]).map(([name, range]) => [name, workspaceVersions.get(name) ?? range]),
    );
  }
  return published;
}

/** Packs every published package into `destination`; returns { name → tarball path }. */
export function packPackages(destination) {
  fs.mkdirSync(destination, { recursive: true });
  const manifests = PUBLISHED_PACKAGES.map((dir) => ({
    dir: path.join(repoRoot, "packages", dir),
    manifest: JSON.parse(fs.readFileSync(path.join(repoRoot, "packages", dir, "package.json"), "utf8")),
  }));
  const workspaceVersions = new Map(manifests.map(({ manifest }) => [manifest.name, manifest.version]));
  const tarballs = {};
  for (const { dir, manifest } of manifests) {
    if (!fs.existsSync(path.join(dir, "dist"))) throw new Error(`${manifest.name}: no dist/ — run \`npm run build\` first`);
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), "tether-stage-"));
    try {
      for (const entry of manifest.files ?? ["dist"]) {
        if (fs.existsSync(path.join(dir, entry))) fs.cpSync(path.join(dir, entry), path.join(stage, entry), { recursive: true });
      }
      for (const doc of ["README.md", "LICENSE"]) {
        if (fs.existsSync(path.join(dir, doc))) fs.copyFileSync(path.join(dir, doc), path.join(stage, doc));
      }
      const published = publishedManifest(manifest, workspaceVersions);
      fs.writeFileSync(path.join(stage, "package.json"), `${JSON.stringify(published, null, 2)}\n`);
      const out = execFileSync("npm", ["pack", "--json", "--pack-destination", destination], { cwd: stage, encoding: "utf8" });
      const [{ filename }] = JSON.parse(out);
      tarballs[manifest.name] = path.join(destination, filename);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }
  return tarballs;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const destination = path.resolve(process.argv[2] ?? "packed");
  for (const [name, file] of Object.entries(packPackages(destination))) console.log(`${name}\t${file}`);
}
