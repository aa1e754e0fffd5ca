// Found by the transformer red team (issue 16): fixed (the WebSocket decoder and the live query read a mismatch as a clear, permanent error).
/**
 * Mismatched transformers over WebSocket, in a Node process of its own (as a user's script runs):
 * the live query must end with a clear error; the process must not die of an uncaught exception.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

function runProbe(arg: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/redteamTransformers/probes/wsMismatchProbe.ts", arg], {
      env: { ...process.env, TETHER_LOG_LEVEL: "silent" },
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => resolve({ code, out }));
  });
}

describe("mismatched transformers over WebSocket in a Node script", () => {
  for (const arg of ["forward", "reverse"]) {
    it(`${arg === "forward" ? "server superjson, client none" : "server none, client superjson"}: no crash, a clear error`, async () => {
      const { code, out } = await runProbe(arg);
      console.log(out.split("\n").filter((l) => /RESULT|Error|throw/.test(l)).slice(0, 6).join("\n"));
      expect(out).not.toMatch(/TransformResultError|Unable to transform response from server\n/);
      expect(code).toBe(0);
      expect(out).toMatch(/RESULT exit=0 .*"error"/);
    }, 60_000);
  }
});
