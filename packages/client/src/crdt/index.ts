/**
 * Collaborative (CRDT) fields: a `LoroDoc` per `(model, id, field)` kept in sync with the
 * server's `$crdt.stream` / `$crdt.push`, persisted in IndexedDB so offline edits survive.
 * See docs/crdt-client.md.
 */
export { fromBase64, toBase64 } from "@tether/protocol";
export { Outbox, type OutboxSpan } from "./outbox.ts";
export { DEFAULT_CRDT_PUSH, type CrdtPushOptions } from "./pushPolicy.ts";
export {
  defaultCrdtPersistence,
  indexedDbCrdtPersistence,
  memoryCrdtPersistence,
  type CrdtPersistence,
  type IndexedDbCrdtPersistenceOptions,
  type PersistedCrdtDoc,
} from "./persistence.ts";
export {
  CRDT_PULL,
  CRDT_PUSH,
  CRDT_STREAM,
  crdtKey,
  readUpdateMessage,
  type CrdtKind,
  type CrdtPushInput,
  type CrdtPushResult,
  type CrdtTarget,
  type CrdtUpdateMessage,
  type CrdtVersionInput,
} from "@tether/protocol";
export {
  type CrdtSessionsOptions,
  crdtSessionsOf,
  CrdtSessionRegistry,
  type CrdtSessionHandle,
  type CrdtSessionRegistryOptions,
} from "./registry.ts";
export {
  CrdtDocSession,
  type CrdtDocSessionOptions,
  type CrdtSessionState,
  type CrdtSessionStats,
  type CrdtStatus,
} from "./session.ts";
export { crdtTransportOf, type CrdtStreamHandlers, type CrdtTransport } from "./transport.ts";
