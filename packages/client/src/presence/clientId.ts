let tabClientId: string | null = null;

/** A fresh presence key (random): each client's default, so two clients never share one. */
export function newPresenceId(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * This tab's presence key: random, made once per page load and kept for its life. Not stored
 * (sessionStorage is copied when a tab is duplicated, and two tabs must never share a key).
 */
export function tabPresenceId(): string {
  tabClientId ??= newPresenceId();
  return tabClientId;
}
