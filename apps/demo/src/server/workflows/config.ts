/** The demo workflows' knobs in one place. */
import { msFromEnv } from "../env.ts";

export interface DemoWorkflowLimits {
  /**
   * How long the welcome workflow waits for the user's first project before it nudges them, ms.
   * Counted from the moment the wait is first reached (the deadline is persisted then: a restart
   * does not move it). Env: TETHER_DEMO_WELCOME_TIMEOUT_MS (tests and the browser test set a short one).
   */
  welcomeFirstProjectTimeoutMs: number;
}

export const DEFAULT_DEMO_WORKFLOWS: DemoWorkflowLimits = {
  welcomeFirstProjectTimeoutMs: 24 * 60 * 60 * 1000,
};

/** The defaults, with TETHER_DEMO_WELCOME_TIMEOUT_MS (a number ≥ 0) from the environment, then `overrides`. */
export function demoWorkflowLimits(overrides: Partial<DemoWorkflowLimits> = {}, env: NodeJS.ProcessEnv = process.env): DemoWorkflowLimits {
  const timeout = msFromEnv(env, "TETHER_DEMO_WELCOME_TIMEOUT_MS");
  const fromEnv: Partial<DemoWorkflowLimits> = timeout === undefined ? {} : { welcomeFirstProjectTimeoutMs: timeout };
  return { ...DEFAULT_DEMO_WORKFLOWS, ...fromEnv, ...overrides };
}
