// Package and folder boundaries that the type checker does not enforce: @tether/protocol depends on
// nothing, and @tether/server's concerns import each other without cycles (a cycle such as
// auth → transport → procedures → auth makes every folder in it load, and change, together).
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

const specifiers = (file: string) => [...readFileSync(file, "utf8").matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]!);

/** Strongly connected groups of more than one node (Tarjan): the cycles of a graph. */
function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do group.push((w = stack.pop()!));
      while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("package boundaries", () => {
  it("@tether/protocol has no dependencies and imports nothing outside itself", () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, "packages/protocol/package.json"), "utf8")) as Record<string, unknown>;
    expect([pkg.dependencies, pkg.peerDependencies]).toEqual([undefined, undefined]);
    const outside = sources(join(repoRoot, "packages/protocol/src")).flatMap((file) => specifiers(file).filter((s) => !s.startsWith("./")));
    expect(outside).toEqual([]);
  });

  it("@tether/server's concern folders import each other without cycles", () => {
    const src = join(repoRoot, "packages/server/src");
    const edges = new Map<string, Set<string>>();
    for (const file of sources(src)) {
      const from = relative(src, file).split("/")[0]!;
      if (!from.endsWith(".ts")) {
        for (const specifier of specifiers(file).filter((s) => s.startsWith("../"))) {
          const to = relative(src, join(file, "..", specifier)).split("/")[0]!;
          if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
        }
      }
    }
    expect(edges.get("auth")).toBeDefined();
    expect(cycles(edges)).toEqual([]);
  });
});
