"use client";
import { Cursor, type LoroDoc } from "loro-crdt";
import { useCallback, useLayoutEffect, useRef, type ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import { fromBase64, toBase64 } from "@tether/client";
import { useCrdtDoc, usePresence, useTRPC } from "../lib/tether.ts";
import { colorOf, initials } from "./Members.tsx";

const FIELD = "body";

/** What each tab shows the others: who, and where their selection is (Loro cursors, base64). */
interface NotePresence {
  userId: string;
  name: string;
  color: string;
  anchor?: string;
  head?: string;
}


/** What one input event changed: the common prefix and suffix of the before and after texts. */
function screenEdit(before: string, after: string): { pos: number; deleted: number; inserted: string } {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (end < before.length - start && end < after.length - start && before[before.length - 1 - end] === after[after.length - 1 - end]) end++;
  return { pos: start, deleted: before.length - start - end, inserted: after.slice(start, after.length - end) };
}

/**
 * A Loro cursor sticks to the character it was taken at, so a selection stays put while others
 * type before it; positions (numbers) would drift with every remote edit.
 */
function cursorAt(doc: LoroDoc, offset: number): Cursor | undefined {
  return doc.getText(FIELD).getCursor(offset) ?? undefined;
}

function offsetOf(doc: LoroDoc, cursor: Cursor | string | undefined): number | null {
  if (!cursor) return null;
  try {
    const decoded = typeof cursor === "string" ? Cursor.decode(fromBase64(cursor)) : cursor;
    return doc.getCursorPos(decoded)?.offset ?? null;
  } catch {
    return null; // a cursor into edits this tab has not received yet: shown once they arrive
  }
}

/**
 * The project's collaborative note: a Loro text document kept by Tether beside the `Note` row
 * (`useCrdtDoc`), with everyone's carets and avatars from the room's presence (`usePresence`).
 * Edits made offline stay in the document (and IndexedDB) and merge when the connection is back.
 */
export function NotePanel({ projectId, noteId, me }: { projectId: string; noteId: string; me: { id: string; name: string } }) {
  const { doc, text, status, pending, error } = useCrdtDoc({ model: "Note", id: noteId, field: FIELD });
  // Server-rendered and shown until the document has loaded (then the document is the truth).
  const trpc = useTRPC();
  const initial = useQuery({ ...trpc.notes.text.queryOptions({ projectId }), staleTime: Infinity, enabled: !doc });
  const presence = usePresence<NotePresence>(`note:${noteId}`, { userId: me.id, name: me.name, color: colorOf(me.id) });
  const { setState } = presence;
  const area = useRef<HTMLTextAreaElement>(null);
  const mirror = useRef<HTMLDivElement>(null);
  const selection = useRef<{ anchor: Cursor; head: Cursor; anchorOffset: number } | null>(null);
  /** The text the textarea shows (as last rendered): what a keystroke's change is relative to. */
  const rendered = useRef("");

  /** Remembers the caret as Loro cursors and shows it to the room. */
  const rememberSelection = useCallback(() => {
    const el = area.current;
    if (!doc || !el) return;
    const anchor = cursorAt(doc, el.selectionStart);
    const head = cursorAt(doc, el.selectionEnd);
    if (!anchor || !head) return;
    selection.current = { anchor, head, anchorOffset: el.selectionStart };
    setState((previous) => ({
      ...(previous ?? { userId: me.id, name: me.name, color: colorOf(me.id) }),
      anchor: toBase64(anchor.encode()),
      head: toBase64(head.encode()),
    }));
  }, [doc, me.id, me.name, setState]);

  // After a remote change re-renders the text, put our caret back where its cursors now are.
  useLayoutEffect(() => {
    rendered.current = text ?? "";
    const el = area.current;
    const held = selection.current;
    if (!doc || !el || !held || document.activeElement !== el) return;
    const start = offsetOf(doc, held.anchor);
    const end = offsetOf(doc, held.head);
    if (start !== null && end !== null && (start !== el.selectionStart || end !== el.selectionEnd)) el.setSelectionRange(start, end);
  }, [doc, text]);

  function onChange(event: React.ChangeEvent<HTMLTextAreaElement>) {
    if (!doc) return;
    const next = event.currentTarget.value;
    const loroText = doc.getText(FIELD);
    const current = loroText.toString();
    if (current === rendered.current) {
      // The usual case: Loro diffs the text on screen against the new one (one insert/delete).
      loroText.update(next);
      doc.commit();
      rememberSelection();
      return;
    }
    // A remote edit arrived after the last render: diffing against the document would undo it.
    // Apply only what this keystroke changed on screen, moved along with the caret's cursor.
    const { pos, deleted, inserted } = screenEdit(rendered.current, next);
    const caret = selection.current;
    const caretNow = caret ? offsetOf(doc, caret.anchor) : null;
    const at = Math.max(0, Math.min(current.length, caretNow === null || !caret ? pos : caretNow + (pos - caret.anchorOffset)));
    if (deleted) loroText.delete(at, Math.min(deleted, current.length - at));
    if (inserted) loroText.insert(at, inserted);
    doc.commit();
    const anchor = cursorAt(doc, at + inserted.length);
    if (anchor) selection.current = { anchor, head: anchor, anchorOffset: at + inserted.length };
  }

  // Other people's carets, where their cursors now point in our copy of the text.
  const others = presence.peers.filter((peer) => !peer.self);
  const carets =
    doc && text !== undefined
      ? others
          .map((peer) => ({ peer, offset: offsetOf(doc, peer.state.head) }))
          .filter((c): c is { peer: (typeof others)[number]; offset: number } => c.offset !== null && c.offset <= text.length)
          .sort((a, b) => a.offset - b.offset)
      : [];

  // The mirror: the same text, transparent, with the other people's carets placed in it.
  const mirrored: ReactNode[] = [];
  let from = 0;
  for (const { peer, offset } of carets) {
    mirrored.push(text!.slice(from, offset));
    mirrored.push(
      <span key={peer.clientId} className="remote-caret" style={{ borderColor: peer.state.color }} data-testid="remote-cursor" data-name={peer.state.name}>
        <span className="caret-label" style={{ background: peer.state.color }}>
          {peer.state.name}
        </span>
      </span>,
    );
    from = offset;
  }
  mirrored.push((text ?? "").slice(from), "\u200b");

  const saving = status === "offline" ? "Offline: edits are kept and sent when you are back" : pending > 0 ? "Saving…" : status === "synced" ? "Saved" : "Connecting…";
  return (
    <section className="card note" aria-label="Note">
      <div className="note-head">
        <h2>Note</h2>
        <ul className="note-peers" data-testid="note-peers" aria-label="Editing now">
          {presence.peers.map((peer) => (
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
      <div className="note-editor">
        <div className="note-mirror" ref={mirror} aria-hidden="true">
          {mirrored}
        </div>
        <textarea
          ref={area}
          value={text ?? initial.data?.body ?? ""}
          disabled={!doc}
          onChange={onChange}
          onSelect={rememberSelection}
          onScroll={(e) => {
            if (mirror.current) mirror.current.scrollTop = e.currentTarget.scrollTop;
          }}
          placeholder={doc ? "Write something together…" : "Loading…"}
          aria-label="Project note"
          data-testid="note"
          data-status={status}
          rows={6}
          spellCheck={false}
        />
      </div>
      <p className="muted small note-status" data-testid="note-status" data-pending={pending}>
        {error && status === "error" ? `Note unavailable: ${(error as Error).message ?? String(error)}` : saving}
      </p>
    </section>
  );
}
