/**
 * @tether/protocol — what travels between @tether/server and @tether/client, in one place: both
 * import it, so nothing here is copied. Pure and dependency-free, so a browser, a Node script and
 * the server load the same code.
 */
export * from "./procedures.ts";
export * from "./live.ts";
export * from "./position.ts";
export * from "./commit.ts";
export * from "./base64.ts";
export * from "./crdt.ts";
export * from "./presence.ts";
export * from "./jobs.ts";
export * from "./workflows.ts";
export * from "./transformer.ts";
export * from "./clock.ts";
