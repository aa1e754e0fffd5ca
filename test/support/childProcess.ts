import type { ChildProcess } from "node:child_process";

/** Resolves once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once("exit", () => resolve()));
}

/** SIGKILL: the process gets no chance to flush or close anything. */
export async function killChild(child: ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await exited(child);
}

/** SIGTERM (a graceful stop), SIGKILL after 20 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await exited(child);
  clearTimeout(timer);
}
