import type { Crdt } from "../crdt/index.ts";
import type { Reactor } from "../reactor/index.ts";

/**
 * Services a Tether instance runs, kept off its public face (an app reads `tether.stats`): Tether's
 * own tests and benches reach them through `@tether/server/internal`.
 */
export interface TetherInternals {
  readonly reactor: Reactor;
  readonly crdt: Crdt;
}

const internals = new WeakMap<object, TetherInternals>();

export function registerInternals(tether: object, parts: TetherInternals): void {
  internals.set(tether, parts);
}

/** The reactor and CRDT service of a Tether made by `initTether().create()`. */
export function tetherInternals(tether: object): TetherInternals {
  const parts = internals.get(tether);
  if (!parts) throw new TypeError("not a Tether instance (made by initTether().create())");
  return parts;
}
