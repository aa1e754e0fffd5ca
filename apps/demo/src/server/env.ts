/** Reading the demo's knobs from the environment: one parser, one error message shape. */

/** `env[name]` as a number of milliseconds >= 0; undefined when unset or empty; throws on anything else. */
export function msFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`${name} must be a number of ms >= 0, not ${raw}`);
  return ms;
}
