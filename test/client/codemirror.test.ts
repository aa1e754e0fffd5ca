// @vitest-environment happy-dom
//
// @tether/client/codemirror: CodeMirror editors bound to Loro texts, two "users" (two LoroDocs,
// two editors) exchanging updates by hand — the order and timing of delivery is the test's to
// choose, which a server would not let it do. The same editors against the real server, in a
// real browser, with presence: test/e2e/demo.e2e.test.ts.
import { EditorSelection, EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { LoroDoc } from "loro-crdt";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  collaborativeText,
  redoLoro,
  remoteCaretPositions,
  setRemoteCarets,
  undoLoro,
  undoManagerOf,
  type EncodedSelection,
} from "@tether/client/codemirror";

const FIELD = "body";
const views: EditorView[] = [];

afterEach(() => {
  for (const view of views.splice(0)) view.destroy();
  vi.useRealTimers();
});

interface User {
  doc: LoroDoc;
  view: EditorView;
  selections: EncodedSelection[];
}

/** A user: their own LoroDoc (own peer id) and editor, created from the document's text. */
function user(initial?: LoroDoc, undo: { mergeIntervalMs?: number } = { mergeIntervalMs: 0 }): User {
  const doc = new LoroDoc();
  if (initial) doc.import(initial.export({ mode: "snapshot" }));
  const selections: EncodedSelection[] = [];
  const view = new EditorView({
    parent: document.body,
    state: EditorState.create({
      doc: doc.getText(FIELD).toString(),
      extensions: collaborativeText({ doc, field: FIELD, undo, onSelection: (s) => selections.push(s) }),
    }),
  });
  views.push(view);
  return { doc, view, selections };
}

/** Delivers to `to` what `from` has that `to` lacks (one server round trip, in effect). */
function deliver(from: User, to: User): void {
  to.doc.import(from.doc.export({ mode: "update", from: to.doc.oplogVersion() }));
}

/** Types as CodeMirror's input handling does: a user-event transaction that moves the caret. */
function type(u: User, at: number, text: string): void {
  u.view.dispatch({ changes: { from: at, insert: text }, selection: { anchor: at + text.length }, userEvent: "input.type" });
}

const shown = (u: User) => u.view.state.doc.toString();
const stored = (u: User) => u.doc.getText(FIELD).toString();
const flushMicrotasks = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe("an editor bound to a Loro text", () => {
  it("commits what is typed to the document; shows what arrives; concurrent edits converge in both editors", () => {
    const alice = user();
    type(alice, 0, "Hello world");
    expect(stored(alice)).toBe("Hello world");
    const bob = user(alice.doc);
    expect(shown(bob)).toBe("Hello world");

    // Both edit before either has the other's change: at the start, the middle and the end,
    // with a line break, a deletion and characters outside the BMP (two UTF-16 units each).
    type(alice, 0, "😀 ");
    alice.view.dispatch({ changes: { from: 8, to: 14 } }); // "😀 Hello world" → "😀 Hello" (😀 is 2 units)
    type(bob, 11, "\nfrom Bob 🎉");
    type(bob, 5, ",");
    expect(shown(alice)).toBe("😀 Hello");
    expect(shown(bob)).toBe("Hello, world\nfrom Bob 🎉");

    deliver(alice, bob);
    deliver(bob, alice);
    expect(stored(alice)).toBe(stored(bob));
    expect(shown(alice)).toBe(stored(alice));
    expect(shown(bob)).toBe(stored(bob));
    expect(shown(alice)).toBe("😀 Hello,\nfrom Bob 🎉");
  });

  it("keeps the local caret on its character while remote text arrives before it", () => {
    const alice = user();
    type(alice, 0, "abcdef");
    const bob = user(alice.doc);
    bob.view.dispatch({ selection: { anchor: 3 } }); // between "abc" and "def"
    type(alice, 0, "XYZ ");
    deliver(alice, bob);
    expect(shown(bob)).toBe("XYZ abcdef");
    expect(bob.view.state.selection.main.head).toBe(7);
    type(bob, bob.view.state.selection.main.head, "!");
    deliver(bob, alice);
    expect(shown(alice)).toBe("XYZ abc!def");
  });

  it("catches up when created from an older copy of the text, and shows edits other code makes", async () => {
    const doc = new LoroDoc();
    doc.getText(FIELD).insert(0, "current text");
    doc.commit();
    const view = new EditorView({
      parent: document.body,
      state: EditorState.create({ doc: "stale", extensions: collaborativeText({ doc, field: FIELD }) }),
    });
    views.push(view);
    await flushMicrotasks();
    expect(view.state.doc.toString()).toBe("current text");
    expect(doc.getText(FIELD).toString()).toBe("current text"); // the repair did not write back

    doc.getText(FIELD).insert(0, "the ");
    doc.commit();
    expect(view.state.doc.toString()).toBe("the current text");
  });
});

describe("undo and redo", () => {
  it("undo removes only this user's edits, also those made while others typed; redo puts them back", () => {
    const alice = user();
    type(alice, 0, "Shared start.");
    const bob = user(alice.doc);

    // Interleaved: Alice, then Bob (received by Alice), then Alice again.
    type(alice, 13, " Alice one.");
    deliver(alice, bob);
    type(bob, 0, "Bob: ");
    deliver(bob, alice);
    type(alice, 0, "[A] ");
    deliver(alice, bob);
    expect(shown(alice)).toBe("[A] Bob: Shared start. Alice one.");
    expect(shown(bob)).toBe(shown(alice));

    // Alice's last step, then the one before (each rebased over Bob's edit); Bob's text stays.
    expect(undoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("Bob: Shared start. Alice one.");
    expect(undoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("Bob: Shared start.");
    expect(stored(alice)).toBe(shown(alice));
    // The undo is an ordinary local change: it reaches Bob like any edit.
    deliver(alice, bob);
    expect(shown(bob)).toBe("Bob: Shared start.");

    // "Shared start." was Alice's first edit, before Bob's editor existed: still hers to undo.
    expect(undoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("Bob: ");
    expect(undoManagerOf(alice.view)?.canUndo()).toBe(false);
    expect(undoLoro(alice.view)).toBe(false);

    // Bob's history is his own: his undo removes his prefix, none of Alice's (remaining) text.
    expect(redoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("Bob: Shared start.");
    deliver(alice, bob);
    expect(undoLoro(bob.view)).toBe(true);
    expect(shown(bob)).toBe("Shared start.");
    deliver(bob, alice);
    expect(redoLoro(alice.view)).toBe(true);
    expect(redoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("[A] Shared start. Alice one.");
    deliver(alice, bob);
    expect(shown(bob)).toBe(shown(alice));
    expect(stored(bob)).toBe(shown(bob));
  });

  it("puts the caret where the undo changed the text", () => {
    const alice = user();
    type(alice, 0, "one two");
    alice.view.dispatch({ selection: { anchor: 0 } });
    type(alice, 3, " and");
    alice.view.dispatch({ selection: { anchor: 0 } });
    undoLoro(alice.view);
    expect(shown(alice)).toBe("one two");
    expect(alice.view.state.selection.main.head).toBe(3);
  });

  it("merges edits closer together than the merge interval into one step", () => {
    const alice = user(undefined, { mergeIntervalMs: 60_000 });
    type(alice, 0, "a");
    type(alice, 1, "b");
    type(alice, 2, "c");
    undoLoro(alice.view);
    expect(shown(alice)).toBe("");
  });
  it("undoes a burst of typing in one step although others' edits arrived between its keystrokes", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-12-01T10:00:00Z"));
    const alice = user(undefined, { mergeIntervalMs: 500 });
    type(alice, 0, "Start.");
    const bob = user(alice.doc);
    vi.advanceTimersByTime(2_000);
    // Alice types a word, a letter every 100 ms; Bob's letters arrive between hers. (Loro itself
    // ends an undo step at every import: without bursts this would be five undos.)
    for (const [i, letter] of [..."words"].entries()) {
      type(alice, alice.view.state.doc.length, letter);
      deliver(alice, bob);
      type(bob, i, "b");
      deliver(bob, alice);
      vi.advanceTimersByTime(100);
    }
    expect(shown(alice)).toBe("bbbbbStart.words");

    expect(undoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("bbbbbStart.");
    expect(redoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("bbbbbStart.words");
    expect(undoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("bbbbbStart.");
    deliver(alice, bob);
    expect(shown(bob)).toBe("bbbbbStart.");
    // The next undo is the earlier burst (two seconds before), on its own.
    expect(undoLoro(alice.view)).toBe(true);
    expect(shown(alice)).toBe("bbbbb");
    expect(undoLoro(alice.view)).toBe(false);
  });
});

describe("carets", () => {
  it("reports this user's selection as Loro cursors that others place at the same characters", async () => {
    const alice = user();
    type(alice, 0, "The quick brown fox");
    const bob = user(alice.doc);
    await flushMicrotasks();
    alice.selections.length = 0;

    alice.view.dispatch({ selection: EditorSelection.single(4, 9) }); // "quick"
    await flushMicrotasks();
    expect(alice.selections).toHaveLength(1);
    const { anchor, head } = alice.selections[0]!;
    bob.view.dispatch({ effects: setRemoteCarets.of([{ id: "alice-tab", name: "Alice", color: "red", anchor, head }]) });
    expect(remoteCaretPositions(bob.view.state)).toEqual([{ id: "alice-tab", name: "Alice", color: "red", anchor: 4, head: 9 }]);

    // Bob types before Alice's selection: it moves with its characters, in Bob's editor.
    type(bob, 0, "See: ");
    expect(remoteCaretPositions(bob.view.state)[0]).toMatchObject({ anchor: 9, head: 14 });
    expect(shown(bob).slice(9, 14)).toBe("quick");

    // The same selection, moved again: the same cursors, nothing new to report.
    alice.view.dispatch({ selection: EditorSelection.single(4, 9) });
    await flushMicrotasks();
    expect(alice.selections).toHaveLength(1);
  });

  it("leaves out a caret whose characters have not arrived yet, and places it once they do", () => {
    const alice = user();
    type(alice, 0, "abc");
    const bob = user(alice.doc);
    type(alice, 3, " new words");
    const text = alice.doc.getText(FIELD);
    const cursor = text.getCursor(8);
    const encoded = cursor ? Buffer.from(cursor.encode()).toString("base64") : null;
    bob.view.dispatch({
      effects: setRemoteCarets.of([
        { id: "a", name: "Alice", color: "red", head: encoded },
        { id: "junk", name: "Mallory", color: "black", head: "not a cursor" },
      ]),
    });
    expect(remoteCaretPositions(bob.view.state)).toEqual([]);
    deliver(alice, bob);
    expect(remoteCaretPositions(bob.view.state)).toEqual([{ id: "a", name: "Alice", color: "red", anchor: 8, head: 8 }]);
  });
});
