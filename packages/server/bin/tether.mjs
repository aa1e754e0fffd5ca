#!/usr/bin/env node
// The `tether` CLI (`tether migrate`, …). In the monorepo it runs the TypeScript source through
// tsx; an installed package has no src/ and runs its build (dist/).
import { existsSync } from "node:fs";

const fromSource = existsSync(new URL("../src/cli/main.ts", import.meta.url));
if (fromSource) (await import("tsx/esm/api")).register();
const { main } = await import(fromSource ? "../src/cli/main.ts" : "../dist/cli/main.js");
process.exitCode = await main(process.argv.slice(2));
