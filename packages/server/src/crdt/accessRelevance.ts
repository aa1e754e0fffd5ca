import type { Change, FeedEvent } from "../feed/index.ts";
import type { ModelMeta } from "../schema/index.ts";

/**
 * Who may read or write a document does not depend on the text of a collaborative field: a change
 * that only rewrote `@crdt` columns of a row (the debounced projection, every `projectionDelayMs`
 * while people type) is left out of what the documents' access checks watch. Without this, each
 * projection re-ran the readability check of every subscriber and the write check of every
 * writer; a push waited for its writer's re-check and a relay skipped subscribers being
 * re-checked, so under load keystrokes waited for policy queries (seen in the deployment bench).
 * Anything else in the change — another column, a column the change log left out, no old/new
 * image — still counts, as do inserts and deletes.
 */
export class AccessRelevance {
  /** Table → its collaborative columns. */
  private readonly crdtColumns = new Map<string, ReadonlySet<string>>();

  constructor(models: readonly ModelMeta[]) {
    for (const model of models) {
      const columns = Object.values(model.fields)
        .filter((f) => f.crdt && f.column)
        .map((f) => f.column!);
      if (columns.length > 0) this.crdtColumns.set(model.table, new Set(columns));
    }
  }

  /** `event` without the changes that only rewrote collaborative columns. */
  filter(event: FeedEvent): FeedEvent {
    if (event.type !== "transaction") return event;
    const changes = event.changes.filter((change) => !this.onlyCollaborative(change));
    return changes.length === event.changes.length ? event : { ...event, changes };
  }

  private onlyCollaborative(change: Change): boolean {
    const crdt = this.crdtColumns.get(change.table);
    if (!crdt || change.op !== "UPDATE" || !change.old || !change.new) return false;
    if (change.omitted.some((column) => !crdt.has(column))) return false;
    const columns = new Set([...Object.keys(change.old), ...Object.keys(change.new)]);
    for (const column of columns) {
      if (crdt.has(column)) continue;
      if (JSON.stringify(change.old[column]) !== JSON.stringify(change.new[column])) return false;
    }
    return true;
  }
}
