import { setTimeout as sleep } from "node:timers/promises";

/** Polls `condition` until it holds; `fatal` (if given) fails the wait at once. No fixed sleeps. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 8_000, fatal }: { timeoutMs?: number; fatal?: () => unknown } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = fatal?.();
    if (failure) throw new Error(`failed while waiting for ${what}: ${String(failure)}`);
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}
