#!/usr/bin/env node
// Entry point Prisma starts for `generator tether`. In the monorepo it runs the TypeScript source
// through tsx; an installed package has no src/ and runs its build (dist/).
import { existsSync } from "node:fs";

const fromSource = existsSync(new URL("../src/generator/index.ts", import.meta.url));
if (fromSource) (await import("tsx/esm/api")).register();
const { runGenerator } = await import(fromSource ? "../src/generator/index.ts" : "../dist/generator/index.js");
runGenerator();
