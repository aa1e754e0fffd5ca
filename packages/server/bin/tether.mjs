#!/usr/bin/env node
// The `tether` CLI (`tether migrate`, …). Runs the TypeScript source through tsx.
import { register } from "tsx/esm/api";
register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
