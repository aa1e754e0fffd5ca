import type { Extension } from "@codemirror/state";
import type { LoroTextTarget } from "./binding.ts";
import { localSelection, remoteCarets } from "./carets.ts";
import type { EncodedSelection } from "./cursors.ts";
import { loroText } from "./loroText.ts";
import { loroUndo, type LoroUndoOptions } from "./undo.ts";

export interface CollaborativeTextOptions extends LoroTextTarget {
  /** Undo/redo of this user's own edits (default on); false: none. */
  undo?: Partial<LoroUndoOptions> | false;
  /** This user's selection as Loro cursors, to put into presence (see `localSelection`). */
  onSelection?: (selection: EncodedSelection) => void;
}

/**
 * Everything a collaborative CodeMirror editor on a Tether text field needs, in the order the
 * parts rely on: the text binding, undo of one's own edits, other people's carets (fed by
 * `setRemoteCarets`) and this user's selection (reported to `onSelection`).
 */
export function collaborativeText(options: CollaborativeTextOptions): Extension {
  const { doc, field, undo = {}, onSelection } = options;
  return [
    loroText({ doc, field }),
    undo === false ? [] : loroUndo(undo),
    remoteCarets(),
    onSelection ? localSelection(onSelection) : [],
  ];
}
