import type { Change } from "../feed/index.ts";
import { findModel, type ModelMeta, type SchemaMeta } from "../schema/index.ts";
import type { ReadSet } from "./readSet.ts";

interface TableGroups<G> {
  /** Every group whose ReadSet touches the table. */
  readonly all: Set<G>;
  /** Groups that could not be filed by a pinned column: every change of the table reaches them. */
  readonly unfiled: Set<G>;
  /** column → value → groups whose every read of the table pins that column to that value. */
  readonly pinned: Map<string, Map<string, Set<G>>>;
}

interface Filing {
  readonly table: string;
  readonly column?: string;
  readonly value?: string;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;

/**
 * A top-level `column: "value"` (or `column: { equals: "value" }`) of a `where`, on a String or
 * enum column: a condition ANDed with the rest, so a row whose column holds another string
 * cannot satisfy the `where`. Null when the `where` pins no such column.
 */
function pinnedColumn(where: unknown, model: ModelMeta): { column: string; value: string } | null {
  if (!isPlainObject(where)) return null;
  for (const [key, condition] of Object.entries(where)) {
    if (key === "AND" || key === "OR" || key === "NOT") continue;
    const field = model.fields[key];
    if (!field || field.isList || !(field.kind === "enum" || (field.kind === "scalar" && field.type === "String"))) continue;
    let value: unknown = condition;
    if (isPlainObject(condition)) {
      const keys = Object.keys(condition).filter((k) => condition[k] !== undefined);
      value = keys.length === 1 && keys[0] === "equals" ? condition.equals : undefined;
    }
    if (typeof value === "string") return { column: field.column ?? key, value };
  }
  return null;
}

/**
 * Which live query groups a change of a table can affect, without testing every group that reads
 * the table (which made each change cost O(groups) predicate checks: ~5 ms per change with 10,000
 * groups of distinct filters). A group whose every read of a table pins a String/enum column to a
 * value — `tasks.byAssignee` reads `where: { assigneeId: "u1" }` — is filed under (column, value);
 * a change reaches only the groups filed under the values its old and new rows hold, plus the
 * groups that could not be filed. Candidates are still checked with `affects`: the index only
 * leaves out groups whose `where` the changed rows cannot satisfy. A change whose row lacks a
 * filed column, or holds a non-string in it, reaches every group of the table.
 */
export class GroupIndex<G> {
  private readonly tables = new Map<string, TableGroups<G>>();
  private readonly filings = new Map<G, Filing[]>();

  constructor(private readonly schema: SchemaMeta) {}

  /** Files a group by the reads of its latest execution (replacing any earlier filing). */
  add(group: G, readSet: ReadSet): void {
    this.remove(group);
    const byTable = new Map<string, { model: ModelMeta | undefined; wheres: unknown[] }>();
    for (const read of readSet.reads) {
      const model = findModel(this.schema, read.model);
      const table = model?.table ?? read.model;
      let entry = byTable.get(table);
      if (!entry) byTable.set(table, (entry = { model, wheres: [] }));
      entry.wheres.push(read.where);
    }
    const filings: Filing[] = [];
    if (readSet.allTables) {
      for (const model of Object.values(this.schema.models)) {
        byTable.delete(model.table);
        filings.push({ table: model.table });
      }
    }
    for (const [table, { model, wheres }] of byTable) {
      const pins = model ? wheres.map((where) => pinnedColumn(where, model)) : [null];
      if (pins.some((pin) => pin === null)) filings.push({ table });
      else for (const pin of pins) filings.push({ table, column: pin!.column, value: pin!.value });
    }
    for (const filing of filings) {
      const groups = this.table(filing.table);
      groups.all.add(group);
      if (filing.column === undefined || filing.value === undefined) {
        groups.unfiled.add(group);
        continue;
      }
      let byValue = groups.pinned.get(filing.column);
      if (!byValue) groups.pinned.set(filing.column, (byValue = new Map()));
      let set = byValue.get(filing.value);
      if (!set) byValue.set(filing.value, (set = new Set()));
      set.add(group);
    }
    this.filings.set(group, filings);
  }

  remove(group: G): void {
    const filings = this.filings.get(group);
    if (!filings) return;
    this.filings.delete(group);
    for (const filing of filings) {
      const groups = this.tables.get(filing.table);
      if (!groups) continue;
      groups.all.delete(group);
      groups.unfiled.delete(group);
      if (filing.column !== undefined && filing.value !== undefined) {
        const byValue = groups.pinned.get(filing.column);
        const set = byValue?.get(filing.value);
        set?.delete(group);
        if (set?.size === 0) byValue!.delete(filing.value);
        if (byValue?.size === 0) groups.pinned.delete(filing.column);
      }
      if (groups.all.size === 0) this.tables.delete(filing.table);
    }
  }

  /** The groups a change may affect (a superset; check each with `affects`). */
  candidates(change: Pick<Change, "table" | "op" | "old" | "new" | "omitted">): Iterable<G> {
    const groups = this.tables.get(change.table);
    if (!groups) return [];
    if (groups.pinned.size === 0 || change.op === "TRUNCATE") return groups.all;
    const out = new Set(groups.unfiled);
    const omitted = change.omitted ?? [];
    for (const [column, byValue] of groups.pinned) {
      for (const row of [change.old, change.new]) {
        if (!row) continue;
        if (omitted.includes(column) || !(column in row)) return groups.all;
        const value = row[column];
        if (value === null) continue; // `column = 'value'` never holds for NULL
        if (typeof value !== "string") return groups.all;
        const set = byValue.get(value);
        if (set) for (const group of set) out.add(group);
      }
    }
    return out;
  }

  clear(): void {
    this.tables.clear();
    this.filings.clear();
  }

  private table(name: string): TableGroups<G> {
    let groups = this.tables.get(name);
    if (!groups) this.tables.set(name, (groups = { all: new Set(), unfiled: new Set(), pinned: new Map() }));
    return groups;
  }
}
