/**
 * @tether/protocol — what travels between @tether/server and @tether/client, in one place.
 * Pure and dependency-free, so the browser, a Node script and the server all load the same code.
 */
export * from "./live.ts";
export * from "./position.ts";
export * from "./base64.ts";
export * from "./crdt.ts";
export * from "./presence.ts";
