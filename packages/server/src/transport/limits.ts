/** Defaults shared by the Node server and the Next.js route handler. */

/** Largest HTTP request body / WebSocket message. Inputs larger than this are not normal traffic. */
export const DEFAULT_MAX_BODY_BYTES = 1_000_000;

/** Unsent bytes one WebSocket may hold before it counts as a slow consumer and is cut off. */
export const DEFAULT_SLOW_CONSUMER_BYTES = 8 * 1024 * 1024;
