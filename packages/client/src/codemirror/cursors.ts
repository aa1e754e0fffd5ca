import { Cursor, type LoroDoc, type LoroText } from "loro-crdt";
import { fromBase64, toBase64 } from "@tether/protocol";

/**
 * A position in a Loro text as something to send (presence state is JSON): a Loro `Cursor`,
 * encoded and base64'd. A cursor names the character it was taken at, so it stays at the same
 * place in the text while others type before it — a plain offset would drift with every remote
 * edit, and would mean something else to a peer that has not received the same edits yet.
 */
export type EncodedCursor = string;

/** A selection as encoded cursors (`anchor` = `head` for a caret). */
export interface EncodedSelection {
  anchor: EncodedCursor;
  head: EncodedCursor;
}

/** The cursor at a UTF-16 offset of the text (what CodeMirror positions are), encoded. */
export function encodeCursor(text: LoroText, offset: number): EncodedCursor | null {
  const cursor = text.getCursor(offset);
  return cursor ? toBase64(cursor.encode()) : null;
}

/** Decodes an encoded cursor; null when it is not one (a peer's state is untrusted input). */
export function decodeCursor(encoded: EncodedCursor | null | undefined): Cursor | null {
  if (!encoded) return null;
  try {
    return Cursor.decode(fromBase64(encoded));
  } catch {
    return null;
  }
}

/**
 * Where a cursor is now in this copy of the document; null when this copy cannot place it — a
 * cursor into edits not received yet (it resolves once they arrive), or into another document.
 */
export function cursorOffset(doc: LoroDoc, cursor: Cursor | null): number | null {
  if (!cursor) return null;
  try {
    return doc.getCursorPos(cursor)?.offset ?? null;
  } catch {
    return null;
  }
}
