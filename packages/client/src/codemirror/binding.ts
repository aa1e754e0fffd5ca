import { Facet, type EditorState } from "@codemirror/state";
import type { LoroDoc, LoroText } from "loro-crdt";

/** Which Loro text an editor shows: the root text container named after the CRDT field. */
export interface LoroTextTarget {
  /** The live document (`useCrdtDoc(...).doc`). */
  readonly doc: LoroDoc;
  /** The `/// @crdt(text)` field: its root container is `doc.getText(field)`. */
  readonly field: string;
}

/**
 * The editor's Loro text, provided once by `loroText()`. The undo, caret and selection
 * extensions read it from here, so they always agree with the text binding about the document.
 */
export const loroTextTarget = Facet.define<LoroTextTarget, LoroTextTarget | null>({
  combine: (values) => values[0] ?? null,
});

/** The bound text, or an error naming the missing extension (a setup mistake, not a runtime state). */
export function boundText(state: EditorState): { doc: LoroDoc; text: LoroText } {
  const target = state.facet(loroTextTarget);
  if (!target) throw new Error("@tether/client/codemirror: add loroText({ doc, field }) (or collaborativeText) to the editor");
  return { doc: target.doc, text: target.doc.getText(target.field) };
}
