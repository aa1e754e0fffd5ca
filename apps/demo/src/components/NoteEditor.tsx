"use client";
import { useEffect, useRef } from "react";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, placeholder } from "@codemirror/view";
import { defaultKeymap } from "@codemirror/commands";
import type { LoroDoc } from "loro-crdt";
import { collaborativeText, setRemoteCarets, type EncodedSelection, type RemoteCaret } from "@tether/client/codemirror";

interface NoteEditorProps {
  /** The loaded document (`useCrdtDoc(...).doc`). */
  doc: LoroDoc;
  field: string;
  /** Everyone else's carets, from presence; a new array when they change. */
  carets: readonly RemoteCaret[];
  /** This user's selection, to publish in presence. */
  onSelection: (selection: EncodedSelection) => void;
  label: string;
}

/**
 * A CodeMirror 6 editor on the note's Loro text. React owns only its host element: the editor
 * keeps its own DOM, and the document — not React state — is the truth it shows, so a keystroke
 * never waits for a render. Created once per document; carets are fed in as effects.
 */
export function NoteEditor({ doc, field, carets, onSelection, label }: NoteEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  // The editor outlives renders: it calls whatever callback and reads whatever carets are current.
  const latest = useRef({ carets, onSelection });
  useEffect(() => {
    latest.current = { carets, onSelection };
  });

  useEffect(() => {
    const editor = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: doc.getText(field).toString(),
        extensions: [
          collaborativeText({ doc, field, onSelection: (selection) => latest.current.onSelection(selection) }),
          keymap.of(defaultKeymap),
          EditorView.lineWrapping,
          placeholder("Write something together…"),
          EditorView.contentAttributes.of({ "aria-label": label, spellcheck: "false" }),
        ],
      }),
    });
    editor.dispatch({ effects: setRemoteCarets.of(latest.current.carets) });
    view.current = editor;
    return () => {
      view.current = null;
      editor.destroy();
    };
  }, [doc, field, label]);

  useEffect(() => {
    view.current?.dispatch({ effects: setRemoteCarets.of(carets) });
  }, [carets]);

  return <div ref={host} className="note-cm" />;
}
