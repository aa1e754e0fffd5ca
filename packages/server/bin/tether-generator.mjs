#!/usr/bin/env node
// Entry point Prisma starts for `generator tether`. Runs the TypeScript source through tsx.
import { register } from "tsx/esm/api";
register();
const { runGenerator } = await import("../src/generator/index.ts");
runGenerator();
