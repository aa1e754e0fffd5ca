import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/** Tether's structured logger. Level from TETHER_LOG_LEVEL (default "info"; "silent" in tests). */
export function createLogger(name = "tether"): Logger {
  const level = process.env.TETHER_LOG_LEVEL ?? (process.env.VITEST ? "silent" : "info");
  return pino({ name, level });
}
