import { Annotation, ChangeSet, EditorSelection, EditorState, Transaction, type ChangeSpec, type Extension } from "@codemirror/state";
import { EditorView, ViewPlugin, type PluginValue, type ViewUpdate } from "@codemirror/view";
import type { Delta, LoroDoc, LoroEventBatch, LoroText } from "loro-crdt";
import { boundText, loroTextTarget, type LoroTextTarget } from "./binding.ts";

/**
 * Marks transactions that carry a change of the Loro text into the editor (a remote edit, an
 * undo, another component's edit): the binding must not write them back into the document.
 */
export const fromLoro = Annotation.define<LoroEventBatch["by"]>();

/** A Loro text delta as CodeMirror changes (positions of the text before the delta). */
export function changesOfDelta(delta: readonly Delta<string>[]): ChangeSpec[] {
  const changes: ChangeSpec[] = [];
  let pos = 0;
  for (const op of delta) {
    if (op.insert !== undefined) changes.push({ from: pos, insert: op.insert });
    else if (op.delete !== undefined) {
      changes.push({ from: pos, to: pos + op.delete });
      pos += op.delete;
    } else if (op.retain !== undefined) pos += op.retain;
  }
  return changes;
}

/** The one change turning `before` into `after`: their common prefix and suffix left alone. */
function replacement(before: string, after: string): ChangeSpec | null {
  if (before === after) return null;
  let start = 0;
  const shorter = Math.min(before.length, after.length);
  while (start < shorter && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let end = 0;
  while (end < shorter - start && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++;
  return { from: start, to: before.length - end, insert: after.slice(start, after.length - end) };
}

/**
 * Keeps one editor and one Loro text equal, both ways:
 *
 * - the editor's own transactions are applied to the text (in order, each against the text as it
 *   was before it, which is what the editor showed) and committed — that commit is what the
 *   Tether session sends;
 * - every other change of the text — an import from the server, an undo, an edit by other code
 *   on the same document — arrives as a Loro event (synchronously, in loro-crdt 1.x) and is
 *   dispatched into the editor, annotated `fromLoro`, as the event's own delta: the editor maps
 *   its selection through it, so the local caret stays on its character while others type.
 *
 * A change that cannot be dispatched (an event fired while the editor is inside an update) or a
 * length mismatch after one (a bug, or a `lineSeparator` other than "\n") is repaired by
 * replacing the differing middle of the editor's text with the document's.
 */
class LoroTextSync implements PluginValue {
  private readonly doc: LoroDoc;
  private readonly text: LoroText;
  /** Set while this plugin commits the editor's own change: its event is already on screen. */
  private applying = false;
  private repairQueued = false;
  private readonly unsubscribe: () => void;

  constructor(private readonly view: EditorView) {
    const { doc, text } = boundText(view.state);
    this.doc = doc;
    this.text = text;
    this.unsubscribe = doc.subscribe((batch) => this.onLoroChange(batch));
    // Built from an older copy of the text (or none): catch up once the view exists (a plugin's
    // constructor may not dispatch).
    if (view.state.doc.length !== text.length || view.state.doc.toString() !== text.toString()) this.queueRepair();
  }

  update(update: ViewUpdate): void {
    if (!update.docChanged) return;
    let changed = false;
    this.applying = true;
    try {
      for (const tr of update.transactions) {
        if (!tr.docChanged || tr.annotation(fromLoro) !== undefined) continue;
        // Ascending, each at its position in the new document: that is its position in the
        // Loro text once the earlier changes of this transaction are applied.
        tr.changes.iterChanges((fromA, toA, fromB, _toB, inserted) => {
          if (toA > fromA) this.text.delete(fromB, toA - fromA);
          if (inserted.length > 0) this.text.insert(fromB, inserted.toString());
          changed = true;
        });
      }
      if (changed) this.doc.commit();
    } finally {
      this.applying = false;
    }
    if (changed && this.text.length !== update.state.doc.length) this.queueRepair();
  }

  destroy(): void {
    this.unsubscribe();
  }

  private onLoroChange(batch: LoroEventBatch): void {
    if (this.applying) return;
    const undoing = batch.origin === "undo" || batch.origin === "redo";
    try {
      // One event per container per batch in practice; were there more, each would be relative
      // to the text after the previous one, so they are composed, not concatenated.
      let changeSet: ChangeSet | null = null;
      for (const event of batch.events) {
        if (event.target !== this.text.id || event.diff.type !== "text") continue;
        const length: number = changeSet ? changeSet.newLength : this.view.state.doc.length;
        const next = ChangeSet.of(changesOfDelta(event.diff.diff), length, "\n");
        changeSet = changeSet ? changeSet.compose(next) : next;
      }
      if (!changeSet || changeSet.empty) return;
      // An undo/redo puts the caret where it changed the text (as an editor's own history
      // would); anything else leaves the local selection where the user has it (mapped).
      let caret = -1;
      if (undoing) changeSet.iterChangedRanges((_fromA, _toA, _fromB, toB) => void (caret = toB));
      this.view.dispatch({
        changes: changeSet,
        selection: caret < 0 ? undefined : EditorSelection.cursor(caret),
        scrollIntoView: undoing,
        annotations: [fromLoro.of(batch.by), Transaction.addToHistory.of(false), Transaction.remote.of(batch.by === "import")],
        userEvent: undoing ? batch.origin : undefined,
      });
    } catch {
      // Inside another update (or a delta that does not fit: a missed event): repair after it.
      this.queueRepair();
      return;
    }
    if (this.text.length !== this.view.state.doc.length) this.queueRepair();
  }

  private queueRepair(): void {
    if (this.repairQueued) return;
    this.repairQueued = true;
    queueMicrotask(() => {
      this.repairQueued = false;
      const change = replacement(this.view.state.doc.toString(), this.text.toString());
      if (change) this.view.dispatch({ changes: change, annotations: [fromLoro.of("local"), Transaction.addToHistory.of(false)] });
    });
  }
}

const loroTextSync = ViewPlugin.fromClass(LoroTextSync);

/**
 * Binds the editor to `doc.getText(field)`: what is typed is committed to the document (and sent
 * by the Tether session that owns it); what arrives is shown. Create the editor state with the
 * text's current content (`doc.getText(field).toString()`) to avoid a first repair dispatch.
 *
 * Sets `EditorState.lineSeparator` to "\n": the editor then counts characters as Loro does
 * (a "\r\n" typed elsewhere stays two characters instead of becoming one line break).
 * Undo/redo: `loroUndo()` (CodeMirror's `history()` would undo other people's edits too).
 */
export function loroText(target: LoroTextTarget): Extension {
  return [loroTextTarget.of(target), EditorState.lineSeparator.of("\n"), loroTextSync];
}
