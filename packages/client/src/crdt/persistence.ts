import { createStore, del, get, set, type UseStore } from "idb-keyval";
import type { OutboxSpan } from "./outbox.ts";

/** What a session keeps between page loads: the whole document and what is still unsent. */
export interface PersistedCrdtDoc {
  /** `doc.export({ mode: "snapshot" })`. */
  snapshot: Uint8Array;
  outbox: OutboxSpan[];
}

/** Where sessions keep their documents. Both calls may fail (quota, private mode): sessions go on. */
export interface CrdtPersistence {
  load(key: string): Promise<PersistedCrdtDoc | undefined>;
  save(key: string, value: PersistedCrdtDoc): Promise<void>;
  remove(key: string): Promise<void>;
}

/**
 * In memory, for runtimes without IndexedDB: nothing survives a reload, but a document that is
 * closed and opened again in the same page starts from what it had (and asks only for the rest).
 */
export function memoryCrdtPersistence(): CrdtPersistence {
  const docs = new Map<string, PersistedCrdtDoc>();
  return {
    load: async (key) => docs.get(key),
    save: async (key, value) => {
      docs.set(key, { snapshot: value.snapshot, outbox: value.outbox.map((span) => ({ ...span })) });
    },
    remove: async (key) => {
      docs.delete(key);
    },
  };
}

export interface IndexedDbCrdtPersistenceOptions {
  /** Default "tether-crdt". */
  dbName?: string;
  /** Default "docs". */
  storeName?: string;
}

/**
 * IndexedDB through idb-keyval, one record per document (snapshot and outbox written together,
 * so a reload never sees an outbox without the operations it names). The database opens on
 * first use, not here: server rendering may build clients where there is no IndexedDB.
 */
export function indexedDbCrdtPersistence(options: IndexedDbCrdtPersistenceOptions = {}): CrdtPersistence {
  let store: UseStore | null = null;
  const db = () => (store ??= createStore(options.dbName ?? "tether-crdt", options.storeName ?? "docs"));
  return {
    load: (key) => get<PersistedCrdtDoc>(key, db()),
    save: (key, value) => set(key, value, db()),
    remove: (key) => del(key, db()),
  };
}

const shared: { idb: CrdtPersistence | null; memory: CrdtPersistence | null } = { idb: null, memory: null };

/** IndexedDB when the runtime has it, else one in-memory store for the page (one of each per page). */
export function defaultCrdtPersistence(): CrdtPersistence {
  if (typeof indexedDB !== "undefined") return (shared.idb ??= indexedDbCrdtPersistence());
  return (shared.memory ??= memoryCrdtPersistence());
}
