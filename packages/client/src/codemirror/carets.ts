import { EditorSelection, StateEffect, StateField, type EditorState, type Extension } from "@codemirror/state";
import { EditorView, layer, RectangleMarker, ViewPlugin, type LayerMarker, type PluginValue, type ViewUpdate } from "@codemirror/view";
import type { Cursor } from "loro-crdt";
import { boundText } from "./binding.ts";
import { cursorOffset, decodeCursor, encodeCursor, type EncodedCursor, type EncodedSelection } from "./cursors.ts";

/** Someone else's caret and selection, as their presence state carries it. */
export interface RemoteCaret {
  /** Stable per peer (the presence `clientId`): keeps its marker across updates. */
  id: string;
  /** Shown on the caret's label. */
  name: string;
  /** Any CSS color: the caret, its label and (translucent) the selection. */
  color: string;
  /** Where the selection starts; absent: a caret at `head`. */
  anchor?: EncodedCursor | null;
  /** Where the caret is; absent: the peer has no caret in this text (nothing is drawn). */
  head?: EncodedCursor | null;
}

/** A remote caret placed in this copy of the text (UTF-16 offsets, as CodeMirror's). */
export interface PlacedCaret {
  id: string;
  name: string;
  color: string;
  anchor: number;
  head: number;
}

/** Replaces the remote carets shown (dispatch it whenever the room's peers change). */
export const setRemoteCarets = StateEffect.define<readonly RemoteCaret[]>();

interface HeldCaret {
  readonly caret: RemoteCaret;
  readonly anchor: Cursor | null;
  readonly head: Cursor | null;
}

/** The peers' cursors, decoded once per presence change (not once per redraw). */
const remoteCaretsField = StateField.define<readonly HeldCaret[]>({
  create: () => [],
  update(held, tr) {
    for (const effect of tr.effects) {
      if (!effect.is(setRemoteCarets)) continue;
      const previous = new Map(held.map((h) => [h.caret.id, h]));
      held = effect.value.map((caret) => {
        const before = previous.get(caret.id);
        const same = (a: EncodedCursor | null | undefined, b: EncodedCursor | null | undefined) => (a ?? null) === (b ?? null);
        if (before && same(before.caret.anchor, caret.anchor) && same(before.caret.head, caret.head)) return { ...before, caret };
        return { caret, anchor: decodeCursor(caret.anchor), head: decodeCursor(caret.head) };
      });
    }
    return held;
  },
});

/**
 * Where the remote carets are now in the editor's text. Resolved on every call from the Loro
 * cursors — never kept as numbers, which every edit would shift. A caret whose cursor this copy
 * cannot place yet (the edits it points into have not arrived) is left out until they do.
 */
export function remoteCaretPositions(state: EditorState): PlacedCaret[] {
  const held = state.field(remoteCaretsField, false);
  if (!held || held.length === 0) return [];
  const { doc } = boundText(state);
  const length = state.doc.length;
  const placed: PlacedCaret[] = [];
  for (const { caret, anchor, head } of held) {
    const headAt = cursorOffset(doc, head);
    if (headAt === null) continue;
    const anchorAt = cursorOffset(doc, anchor) ?? headAt;
    placed.push({ id: caret.id, name: caret.name, color: caret.color, anchor: Math.min(anchorAt, length), head: Math.min(headAt, length) });
  }
  return placed;
}

/**
 * A rectangle of CodeMirror's own geometry (`RectangleMarker.forRange`), painted in a peer's
 * colour and tagged with who it is (`data-peer`, `data-name`, `data-offset`: the caret's position
 * in the text, for tests and debugging).
 */
class PeerMarker implements LayerMarker {
  constructor(
    readonly base: RectangleMarker,
    readonly caret: PlacedCaret,
    readonly kind: "caret" | "selection",
  ) {}

  draw(): HTMLElement {
    const el = this.base.draw();
    el.dataset.peer = this.caret.id;
    el.dataset.name = this.caret.name;
    el.dataset.offset = String(this.caret.head);
    if (this.kind === "selection") {
      el.style.backgroundColor = this.caret.color;
      return el;
    }
    el.style.borderLeftColor = this.caret.color;
    const label = document.createElement("div");
    label.className = "cm-tether-caret-label";
    label.textContent = this.caret.name;
    label.style.backgroundColor = this.caret.color;
    el.appendChild(label);
    return el;
  }

  update(dom: HTMLElement, old: LayerMarker): boolean {
    if (!(old instanceof PeerMarker) || old.kind !== this.kind || old.caret.name !== this.caret.name || old.caret.color !== this.caret.color) {
      return false;
    }
    if (!this.base.update(dom, old.base)) return false;
    dom.dataset.peer = this.caret.id;
    dom.dataset.offset = String(this.caret.head);
    return true;
  }

  eq(other: LayerMarker): boolean {
    return (
      other instanceof PeerMarker &&
      other.kind === this.kind &&
      this.base.eq(other.base) &&
      other.caret.id === this.caret.id &&
      other.caret.name === this.caret.name &&
      other.caret.color === this.caret.color &&
      other.caret.head === this.caret.head
    );
  }
}

const caretsChanged = (update: ViewUpdate) =>
  update.docChanged ||
  update.viewportChanged ||
  update.geometryChanged ||
  update.transactions.some((tr) => tr.effects.some((effect) => effect.is(setRemoteCarets)));

const remoteSelectionLayer = layer({
  above: false,
  class: "cm-tether-selectionLayer",
  update: caretsChanged,
  markers: (view) =>
    remoteCaretPositions(view.state)
      .filter((caret) => caret.anchor !== caret.head)
      .flatMap((caret) =>
        RectangleMarker.forRange(view, "cm-tether-selection", EditorSelection.range(caret.anchor, caret.head)).map(
          (rect) => new PeerMarker(rect, caret, "selection"),
        ),
      ),
});

const remoteCaretLayer = layer({
  above: true,
  class: "cm-tether-caretLayer",
  update: caretsChanged,
  markers: (view) =>
    remoteCaretPositions(view.state).flatMap((caret) =>
      RectangleMarker.forRange(view, "cm-tether-caret", EditorSelection.cursor(caret.head)).map((rect) => new PeerMarker(rect, caret, "caret")),
    ),
});

const caretTheme = EditorView.baseTheme({
  ".cm-tether-caretLayer": { pointerEvents: "none" },
  ".cm-tether-caret": { borderLeft: "2px solid", marginLeft: "-1px" },
  ".cm-tether-caret-label": {
    position: "absolute",
    left: "-2px",
    bottom: "100%",
    padding: "0 4px",
    borderRadius: "3px 3px 3px 0",
    color: "#fff",
    font: "600 11px/1.4 system-ui, sans-serif",
    whiteSpace: "nowrap",
  },
  ".cm-tether-selection": { opacity: "0.25" },
});

/**
 * Draws other people's carets (with their name) and selections, from `setRemoteCarets` effects,
 * at the characters their Loro cursors name in this copy of the text (needs `loroText()`).
 */
export function remoteCarets(): Extension {
  return [remoteCaretsField, remoteSelectionLayer, remoteCaretLayer, caretTheme];
}

/**
 * Reports this user's selection as Loro cursors whenever the user moves it (or types), for the
 * app to put into its presence state. Reported after the update (a microtask), when the text
 * binding has committed the edit the selection lies in; an unchanged encoding is not repeated —
 * typing before a character keeps the cursor on that character, so most keystrokes send nothing.
 */
export function localSelection(onChange: (selection: EncodedSelection) => void): Extension {
  return ViewPlugin.define((view): PluginValue => {
    let queued = false;
    let destroyed = false;
    let last = "";
    const report = () => {
      queued = false;
      if (destroyed) return;
      const { text } = boundText(view.state);
      const { anchor, head } = view.state.selection.main;
      const selection = { anchor: encodeCursor(text, anchor), head: encodeCursor(text, head) };
      if (selection.anchor === null || selection.head === null) return;
      const key = `${selection.anchor} ${selection.head}`;
      if (key === last) return;
      last = key;
      onChange({ anchor: selection.anchor, head: selection.head });
    };
    return {
      update(update) {
        if (!update.selectionSet && !(update.focusChanged && view.hasFocus)) return;
        if (queued) return;
        queued = true;
        queueMicrotask(report);
      },
      destroy() {
        destroyed = true;
      },
    };
  });
}
