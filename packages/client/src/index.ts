/**
 * @tether/client — React hooks (useLiveQuery, useCrdtDoc, usePresence) over a framework-agnostic
 * core. A skeleton until the client issue lands; nothing is exported yet.
 */
export {};
