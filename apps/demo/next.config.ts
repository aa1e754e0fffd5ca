import path from "node:path";
import type { NextConfig } from "next";

// The monorepo's root (Next is installed there). The demo's server sets it; `next build` runs in
// apps/demo. (No import.meta here: Next may load this file as CommonJS.)
const repoRoot = process.env.TETHER_REPO_ROOT ?? path.resolve(process.cwd(), "../..");

const config: NextConfig = {
  // The browser tests run their own server beside a developer's `npm run dev`.
  distDir: process.env.NEXT_DIST_DIR ?? ".next",
  // @tether/client ships TypeScript sources.
  transpilePackages: ["@tether/client", "@tether/protocol"],
  // Loro is WebAssembly: on the server it is loaded by Node from node_modules (its nodejs build
  // reads the .wasm beside it), never bundled; the browser gets its browser build.
  serverExternalPackages: ["loro-crdt"],
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  allowedDevOrigins: ["127.0.0.1", "localhost"],
  devIndicators: false,
  poweredByHeader: false,
};

export default config;
