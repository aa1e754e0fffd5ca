import { Facet, type Extension } from "@codemirror/state";
import { EditorView, keymap, ViewPlugin, type Command, type PluginValue } from "@codemirror/view";
import { UndoManager } from "loro-crdt";
import { boundText } from "./binding.ts";

/** Undo history of one editor (see `loroUndo`). */
export interface LoroUndoOptions {
  /**
   * Edits closer together than this (ms) are undone as one step — a typed word, not a letter.
   * (CodeMirror's own history groups at 500 ms too.)
   */
  mergeIntervalMs: number;
  /** Steps kept; the oldest are dropped beyond it (memory stays bounded in a long session). */
  maxSteps: number;
}

export const DEFAULT_LORO_UNDO: Readonly<LoroUndoOptions> = Object.freeze({
  mergeIntervalMs: 500,
  maxSteps: 100,
});

const undoOptions = Facet.define<Partial<LoroUndoOptions>, LoroUndoOptions>({
  combine: (values) => ({ ...DEFAULT_LORO_UNDO, ...values[0] }),
});

/**
 * Owns the editor's Loro `UndoManager` for the editor's lifetime. Loro records only this peer's
 * (this tab's) commits and, on undo, reverts them rebased over everything received since — so an
 * undo never removes someone else's text. Its changes are local commits with origin "undo" /
 * "redo": the text binding shows them and the Tether session sends them like any edit.
 */
class LoroUndo implements PluginValue {
  readonly manager: UndoManager;

  constructor(view: EditorView) {
    const { doc } = boundText(view.state);
    const options = view.state.facet(undoOptions);
    this.manager = new UndoManager(doc, { mergeInterval: options.mergeIntervalMs, maxUndoSteps: options.maxSteps });
  }

  destroy(): void {
    this.manager.free();
  }
}

const loroUndoPlugin = ViewPlugin.fromClass(LoroUndo);

/** The editor's undo manager (null without `loroUndo()`): e.g. for `canUndo()` in a toolbar. */
export function undoManagerOf(view: EditorView): UndoManager | null {
  return view.plugin(loroUndoPlugin)?.manager ?? null;
}

// Commands run from key handlers, outside CodeMirror updates: the manager's synchronous Loro
// event is dispatched into the editor by the text binding right away.
/** Undoes this user's last step. */
export const undoLoro: Command = (view) => {
  const manager = undoManagerOf(view);
  if (!manager?.canUndo()) return false;
  manager.undo();
  return true;
};

/** Redoes the last undone step. */
export const redoLoro: Command = (view) => {
  const manager = undoManagerOf(view);
  if (!manager?.canRedo()) return false;
  manager.redo();
  return true;
};

/** The usual bindings: Mod-z undo; Mod-y and Mod-Shift-z redo. */
export const loroUndoKeymap = [
  { key: "Mod-z", run: undoLoro, preventDefault: true },
  { key: "Mod-y", mac: "Mod-Shift-z", run: redoLoro, preventDefault: true },
  { key: "Mod-Shift-z", run: redoLoro, preventDefault: true },
];

/**
 * Undo/redo of this user's own edits, over Loro's `UndoManager` (needs `loroText()`), with its
 * keymap and the browser's own undo (Edit menu, context menu: `historyUndo` input events). Use it
 * instead of CodeMirror's `history()`, which would undo whatever changed last, remote edits too.
 */
export function loroUndo(options: Partial<LoroUndoOptions> = {}): Extension {
  return [
    undoOptions.of(options),
    loroUndoPlugin,
    keymap.of(loroUndoKeymap),
    EditorView.domEventHandlers({
      beforeinput(event, view) {
        const command = event.inputType === "historyUndo" ? undoLoro : event.inputType === "historyRedo" ? redoLoro : null;
        if (!command) return false;
        event.preventDefault();
        return command(view);
      },
    }),
  ];
}
