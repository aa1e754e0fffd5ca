// `@tether/client`'s root is the framework-agnostic core: importing it must not load React, Loro
// (WebAssembly) or an IndexedDB module, so a Node script or another framework pays for none of
// them. Checked in a fresh Node process whose module resolutions are recorded by a loader hook.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "tether-core-entry-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every URL a fresh `node` resolves while importing `specifier` (and touching its exports). */
function resolvedBy(specifier: string): string[] {
  const log = join(dir, `${specifier.replace(/\W/g, "_")}.log`);
  const hooks = join(dir, "hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.TETHER_RESOLVE_LOG, result.url + "\\n");
  return result;
}
`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  writeFileSync(log, "");
  // tsx first, the recorder after it: the recorder's hook runs first and sees tsx's final answer.
  execFileSync(
    process.execPath,
    ["--import", "tsx", "--import", pathToFileURL(register).href, "--input-type=module", "-e", `const m = await import(${JSON.stringify(specifier)}); if (Object.keys(m).length === 0) process.exit(3);`],
    { cwd: repoRoot, env: { ...process.env, TETHER_RESOLVE_LOG: log }, stdio: ["ignore", "ignore", "inherit"] },
  );
  return readFileSync(log, "utf8").split("\n").filter(Boolean);
}

const heavy = (urls: string[]) =>
  urls.filter((url) => /\/node_modules\/(react|react-dom|loro-crdt|idb-keyval|@tanstack\/react-query|@trpc\/tanstack-react-query)\//.test(url) || /\/packages\/client\/src\/(react|crdt|presence|codemirror)\//.test(url));

describe("@tether/client core entry point", () => {
  it("loads no React, Loro or IndexedDB module", () => {
    const urls = resolvedBy("@tether/client");
    expect(urls.some((url) => url.includes("/packages/client/src/core/"))).toBe(true);
    expect(heavy(urls)).toEqual([]);
  });

  it("the recorder sees them when an entry point does load them (the check can fail)", () => {
    const urls = resolvedBy("@tether/client/crdt");
    expect(heavy(urls).some((url) => url.includes("/node_modules/loro-crdt/"))).toBe(true);
    expect(heavy(urls).some((url) => url.includes("/node_modules/idb-keyval/"))).toBe(true);
  });
});
