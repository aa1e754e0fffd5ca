"use client";
import { useCallback, useMemo } from "react";
import { useQuery } from "@tanstack/react-query";
import type { EncodedSelection, RemoteCaret } from "@tether/client/codemirror";
import { useCrdtDoc, usePresence, useTRPC } from "../lib/tether.ts";
import { colorOf, initials } from "./Members.tsx";
import { NoteEditor } from "./NoteEditor.tsx";

const FIELD = "body";

/** What each tab shows the others: who, and where their selection is (Loro cursors, base64). */
interface NotePresence {
  userId: string;
  name: string;
  color: string;
  anchor?: string;
  head?: string;
}

/**
 * The project's collaborative note: a CodeMirror editor on a Loro text document kept by Tether
 * beside the `Note` row (`useCrdtDoc`), with everyone's avatars, carets and selections from the
 * room's presence (`usePresence`), and undo/redo that only undoes this user's own edits.
 * Edits made offline stay in the document (and IndexedDB) and merge when the connection is back.
 */
export function NotePanel({ projectId, noteId, me }: { projectId: string; noteId: string; me: { id: string; name: string } }) {
  const { doc, status, pending, error } = useCrdtDoc({ model: "Note", id: noteId, field: FIELD });
  // Server-rendered and shown until the document has loaded (then the editor shows the document).
  const trpc = useTRPC();
  const initial = useQuery({ ...trpc.notes.text.queryOptions({ projectId }), staleTime: Infinity, enabled: !doc });
  const presence = usePresence<NotePresence>(`note:${noteId}`, { userId: me.id, name: me.name, color: colorOf(me.id) });
  const { setState, peers } = presence;

  /** Our selection, as Loro cursors, into our presence state: the others draw it. */
  const publishSelection = useCallback(
    ({ anchor, head }: EncodedSelection) =>
      setState((previous) => ({ ...(previous ?? { userId: me.id, name: me.name, color: colorOf(me.id) }), anchor, head })),
    [me.id, me.name, setState],
  );

  // The presence snapshot keeps its peers array while nothing changed: so do the carets.
  const carets = useMemo<RemoteCaret[]>(
    () =>
      peers
        .filter((peer) => !peer.self)
        .map((peer) => ({ id: peer.clientId, name: peer.state.name, color: peer.state.color, anchor: peer.state.anchor, head: peer.state.head })),
    [peers],
  );

  const saving = status === "offline" ? "Offline: edits are kept and sent when you are back" : pending > 0 ? "Saving…" : status === "synced" ? "Saved" : "Connecting…";
  return (
    <section className="card note" aria-label="Note">
      <div className="note-head">
        <h2>Note</h2>
        <ul className="note-peers" data-testid="note-peers" aria-label="Editing now">
          {peers.map((peer) => (
            <li
              key={peer.clientId}
              className="avatar"
              style={{ background: peer.state.color }}
              title={peer.self ? `${peer.state.name} (you)` : peer.state.name}
              data-testid="note-peer"
              data-name={peer.state.name}
            >
              {initials(peer.state.name)}
            </li>
          ))}
        </ul>
      </div>
      <div className="note-editor" data-testid="note" data-status={status}>
        {doc ? (
          <NoteEditor doc={doc} field={FIELD} carets={carets} onSelection={publishSelection} label="Project note" />
        ) : (
          <div className="note-static" aria-label="Project note" aria-busy="true">
            {initial.data?.body || <span className="muted">Loading…</span>}
          </div>
        )}
      </div>
      <p className="muted small note-status" data-testid="note-status" data-pending={pending}>
        {error && status === "error" ? `Note unavailable: ${(error as Error).message ?? String(error)}` : saving}
      </p>
    </section>
  );
}
