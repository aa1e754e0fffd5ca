/**
 * The timer functions the core's delays use, injectable so tests drive time by hand instead of
 * sleeping (e.g. a registry's release delay).
 */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The runtime's own `setTimeout` / `clearTimeout`. */
export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
