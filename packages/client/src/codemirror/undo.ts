import { Facet, type Extension } from "@codemirror/state";
import { EditorView, keymap, ViewPlugin, type Command, type PluginValue } from "@codemirror/view";
import { UndoManager, type Value } from "loro-crdt";
import { boundText } from "./binding.ts";

/** Undo history of one editor (see `loroUndo`). */
export interface LoroUndoOptions {
  /**
   * Edits closer together than this (ms) are undone as one step — a typed word, not a letter —
   * also when other people's edits arrived in between. (CodeMirror's own history groups at 500 ms.)
   */
  mergeIntervalMs: number;
  /**
   * Loro undo steps kept; the oldest are dropped beyond it (memory stays bounded in a long
   * session). While others type, Loro makes each keystroke a step of its own (see `LoroUndo`).
   */
  maxSteps: number;
}

export const DEFAULT_LORO_UNDO: Readonly<LoroUndoOptions> = Object.freeze({
  mergeIntervalMs: 500,
  maxSteps: 1_000,
});

const undoOptions = Facet.define<Partial<LoroUndoOptions>, LoroUndoOptions>({
  combine: (values) => ({ ...DEFAULT_LORO_UNDO, ...values[0] }),
});

/**
 * Owns the editor's Loro `UndoManager` for the editor's lifetime. Loro records only this peer's
 * (this tab's) commits and, on undo, reverts them rebased over everything received since — so an
 * undo never removes someone else's text. Its changes are local commits with origin "undo" /
 * "redo": the text binding shows them and the Tether session sends them like any edit.
 *
 * Loro ends an undo step at every remote import, so while someone else types, each keystroke of
 * ours would be a step of its own (undo letter by letter). Each step is therefore tagged with a
 * *burst* (its value in the stack): edits less than `mergeIntervalMs` apart share one, and undo
 * and redo take a whole burst. A step moved between the stacks keeps its burst (`onPop` → `onPush`).
 */
class LoroUndo implements PluginValue {
  readonly manager: UndoManager;
  private readonly mergeIntervalMs: number;
  private bursts = 0;
  private lastEditAt = Number.NEGATIVE_INFINITY;
  /** While undoing or redoing: the burst of the step just popped, for the step pushed back. */
  private replaying: { burst: Value } | null = null;

  constructor(view: EditorView) {
    const { doc } = boundText(view.state);
    const options = view.state.facet(undoOptions);
    this.mergeIntervalMs = options.mergeIntervalMs;
    this.manager = new UndoManager(doc, {
      mergeInterval: options.mergeIntervalMs,
      maxUndoSteps: options.maxSteps,
      onPush: () => ({ value: this.burstOfPush(), cursors: [] }),
      onPop: (_isUndo, item) => {
        if (this.replaying) this.replaying.burst = item.value;
      },
    });
  }

  /** Undoes (or redoes) the top step and every step below it of the same burst. */
  step(direction: "undo" | "redo"): boolean {
    const manager = this.manager;
    const can = () => (direction === "undo" ? manager.canUndo() : manager.canRedo());
    const top = () => (direction === "undo" ? manager.topUndoValue() : manager.topRedoValue());
    if (!can()) return false;
    const burst = top();
    do {
      this.replaying = { burst: null };
      try {
        if (direction === "undo") manager.undo();
        else manager.redo();
      } finally {
        this.replaying = null;
      }
    } while (typeof burst === "number" && can() && top() === burst);
    return true;
  }

  destroy(): void {
    this.manager.free();
  }

  private burstOfPush(): Value {
    if (this.replaying) return this.replaying.burst;
    const now = Date.now();
    if (this.mergeIntervalMs <= 0 || now - this.lastEditAt > this.mergeIntervalMs) this.bursts += 1;
    this.lastEditAt = now;
    return this.bursts;
  }
}

const loroUndoPlugin = ViewPlugin.fromClass(LoroUndo);

/** The editor's undo manager (null without `loroUndo()`): e.g. for `canUndo()` in a toolbar. */
export function undoManagerOf(view: EditorView): UndoManager | null {
  return view.plugin(loroUndoPlugin)?.manager ?? null;
}

// Commands run from key handlers, outside CodeMirror updates: the manager's synchronous Loro
// events are dispatched into the editor by the text binding right away.
/** Undoes this user's last burst of edits. */
export const undoLoro: Command = (view) => view.plugin(loroUndoPlugin)?.step("undo") ?? false;

/** Redoes the last undone burst. */
export const redoLoro: Command = (view) => view.plugin(loroUndoPlugin)?.step("redo") ?? false;

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
