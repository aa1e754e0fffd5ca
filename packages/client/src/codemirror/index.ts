/**
 * `@tether/client/codemirror`: a CodeMirror 6 editor on a collaborative text field — the text
 * bound to the `LoroDoc` of `useCrdtDoc`, undo/redo of one's own edits (Loro's `UndoManager`),
 * other people's carets and selections from presence (Loro cursors in the presence state).
 * `@codemirror/state` and `@codemirror/view` are optional peer dependencies: only apps that
 * import this entry point need them. See docs/crdt-client.md.
 */
export { loroTextTarget, type LoroTextTarget } from "./binding.ts";
export {
  localSelection,
  remoteCaretPositions,
  remoteCarets,
  setRemoteCarets,
  type PlacedCaret,
  type RemoteCaret,
} from "./carets.ts";
export { collaborativeText, type CollaborativeTextOptions } from "./collaborativeText.ts";
export { cursorOffset, decodeCursor, encodeCursor, type EncodedCursor, type EncodedSelection } from "./cursors.ts";
export { changesOfDelta, fromLoro, loroText } from "./loroText.ts";
export { DEFAULT_LORO_UNDO, loroUndo, loroUndoKeymap, redoLoro, undoLoro, undoManagerOf, type LoroUndoOptions } from "./undo.ts";
