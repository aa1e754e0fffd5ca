/**
 * The procedure paths Tether reserves in an app's router (`tether.appRouter()` mounts them); the
 * client calls them by these names. An app's own routes may not use the `$` prefixes below.
 */

/** The generic live subscription: `{ path, input, lastEventId }` → a stream of `LiveMessage`s. */
export const LIVE_PROCEDURE = "$live";

/** CRDT documents of `@crdt` fields (see docs/crdt.md). */
export const CRDT_PULL = "$crdt.pull";
export const CRDT_PUSH = "$crdt.push";
export const CRDT_STREAM = "$crdt.stream";

/** Presence rooms (see docs/presence.md). */
export const PRESENCE_JOIN = "$presence.join";
export const PRESENCE_SET = "$presence.set";

/** A job's state, and its cancellation (see docs/jobs.md). */
export const JOB_PROCEDURE = "$jobs.get";
export const JOB_CANCEL_PROCEDURE = "$jobs.cancel";

/** A workflow run's state, and its cancellation (see docs/workflows.md). */
export const WORKFLOW_PROCEDURE = "$workflows.get";
export const WORKFLOW_CANCEL_PROCEDURE = "$workflows.cancel";
