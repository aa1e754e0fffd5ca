import { useEffect, useMemo, useState, useSyncExternalStore } from "react";
import type { LoroDoc } from "loro-crdt";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import { crdtSessionsOf } from "../crdt/registry.ts";
import { crdtKey, type CrdtKind } from "@tether/protocol";
import type { CrdtDocSession, CrdtSessionState, CrdtStatus } from "../crdt/session.ts";

export interface UseCrdtDocOptions {
  /** Prisma model name, e.g. "Note". */
  model: string;
  /** The row's id; null/undefined: not yet known (the hook waits, status "idle"). */
  id: string | number | null | undefined;
  /** A field marked `/// @crdt(text)` or `/// @crdt(map)`. */
  field: string;
  /** The field's kind (default "text"): picks `text` or `value` in the result. */
  kind?: CrdtKind;
  /** Default true. */
  enabled?: boolean;
}

export interface UseCrdtDocResult {
  /**
   * The live document (null until loaded). Edit its root container named after the field —
   * `doc.getText(field).insert(0, "hi")` — then `doc.commit()`: committed changes are sent.
   */
  doc: LoroDoc | null;
  /** Text fields: `doc.getText(field).toString()`, re-rendered on every local or remote change. */
  text: string | undefined;
  /** Map fields: `doc.getMap(field).toJSON()`, re-rendered on every change. */
  value: Record<string, unknown> | undefined;
  /** "idle" when disabled or without an id; see CrdtStatus. */
  status: CrdtStatus | "idle";
  /** Local operations not yet acknowledged by the server (0 when everything is sent). */
  pending: number;
  /** Why the status is "error" (a tRPC error: NOT_FOUND, FORBIDDEN, PAYLOAD_TOO_LARGE, …). */
  error: unknown;
  /** The shared session (retry(), persist(), stats), null when idle. */
  session: CrdtDocSession | null;
}

const IDLE: CrdtSessionState = Object.freeze({ status: "loading", pending: 0, error: null, doc: null, revision: 0 });

/** `useCrdtDoc` against a given Tether client (the React binding passes the provider's). */
export function useCrdtDocWith(tether: TetherClient<AnyRouter>, options: UseCrdtDocOptions): UseCrdtDocResult {
  const { model, id, field } = options;
  const kind = options.kind ?? "text";
  const enabled = options.enabled !== false && (typeof id === "number" || (typeof id === "string" && id.length > 0));
  const [session, setSession] = useState<CrdtDocSession | null>(null);

  useEffect(() => {
    if (!enabled) return;
    // One session per (model, id, field) for the whole client: every component showing the
    // same field edits the same LoroDoc over one stream.
    const handle = crdtSessionsOf(tether).acquire({ model, id: id as string | number, field });
    setSession(handle.session);
    return () => {
      handle.release();
      setSession(null);
    };
  }, [tether, model, id, field, enabled]);

  // After a key change the effect swaps sessions one render late: never show the old one meanwhile.
  const current =
    enabled && session && !session.isDisposed && session.key === crdtKey({ model, id: id as string | number, field }) ? session : null;
  const state = useSyncExternalStore(
    (onChange) => (current ? current.subscribe(onChange) : () => undefined),
    () => (current ? current.state : IDLE),
    () => IDLE,
  );

  const doc = current ? state.doc : null;
  const text = useMemo(
    () => (doc && kind === "text" ? doc.getText(field).toString() : undefined),
    // `revision` changes with the document: the value is recomputed exactly then.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [doc, kind, field, state.revision],
  );
  const value = useMemo(
    () => (doc && kind === "map" ? (doc.getMap(field).toJSON() as Record<string, unknown>) : undefined),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [doc, kind, field, state.revision],
  );

  return {
    doc,
    text,
    value,
    status: enabled ? (current ? state.status : "loading") : "idle",
    pending: current ? state.pending : 0,
    error: current ? state.error : null,
    session: current,
  };
}
