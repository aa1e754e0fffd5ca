import type { LoroDoc } from "loro-crdt";
import pg from "pg";
import { stableStringify } from "../reactor/index.ts";
import type { CrdtKind, FieldMeta, ModelMeta, SchemaMeta } from "../schema/index.ts";
import { badRequest } from "./codec.ts";

/** One document: a CRDT field of one row. */
export interface DocTarget {
  readonly model: ModelMeta;
  readonly field: FieldMeta;
  readonly kind: CrdtKind;
  /** The single primary-key field. */
  readonly pk: FieldMeta;
  /** The row id as stored in the sidecar (text). */
  readonly rowId: string;
  /** The row id as Prisma wants it in `where`. */
  readonly pkValue: string | number;
  /** `model\0rowId\0field`: the document's key on a node. */
  readonly key: string;
  /** Quoted SQL names. */
  readonly sql: { table: string; column: string; pk: string };
}

export const docKey = (model: string, rowId: string, field: string) => `${model}\u0000${rowId}\u0000${field}`;

/** Checks `model`/`field` name a CRDT field of a model with a single-column key (BAD_REQUEST otherwise). */
export function resolveTarget(schema: SchemaMeta, input: { model: string; id: string | number; field: string }): DocTarget {
  const model = Object.hasOwn(schema.models, input.model) ? schema.models[input.model] : undefined;
  if (!model) throw badRequest(`unknown model ${input.model}`);
  const field = Object.hasOwn(model.fields, input.field) ? model.fields[input.field] : undefined;
  if (!field?.crdt || !field.column) throw badRequest(`${input.model}.${input.field} is not a CRDT field`);
  const pk = model.primaryKey.length === 1 ? model.fields[model.primaryKey[0]!] : undefined;
  if (!pk?.column) throw badRequest(`${input.model} needs a single-column primary key for CRDT documents`);
  let pkValue: string | number;
  if (pk.type === "Int") {
    pkValue = typeof input.id === "number" ? input.id : Number(input.id);
    if (!Number.isSafeInteger(pkValue)) throw badRequest("id must be an integer");
  } else if (pk.type === "String") {
    pkValue = String(input.id);
  } else {
    throw badRequest(`${input.model}'s ${pk.type} key is not supported for CRDT documents`);
  }
  const rowId = String(pkValue);
  return {
    model,
    field,
    kind: field.crdt,
    pk,
    rowId,
    pkValue,
    key: docKey(model.name, rowId, field.name),
    sql: {
      table: pg.escapeIdentifier(model.table),
      column: pg.escapeIdentifier(field.column),
      pk: pg.escapeIdentifier(pk.column),
    },
  };
}

/** The CRDT fields of a schema, per model (for the deletion triggers). */
export function crdtModels(schema: SchemaMeta): ModelMeta[] {
  return Object.values(schema.models).filter((m) => Object.values(m.fields).some((f) => f.crdt));
}

/**
 * The document's value as the model's column holds it: the text, or the map as JSON (a string
 * for a String column, the object itself for a Json column).
 */
export function projection(target: DocTarget, doc: LoroDoc): unknown {
  if (target.kind === "text") return doc.getText(target.field.name).toString();
  const value = doc.getMap(target.field.name).toJSON() as unknown;
  return target.field.type === "String" ? JSON.stringify(value) : value;
}

/** The column's value as the document would project it (for comparison). */
function columnAsDocValue(target: DocTarget, column: unknown): unknown {
  if (target.kind === "text") return typeof column === "string" ? column : "";
  let value = column;
  if (typeof column === "string") {
    try {
      value = JSON.parse(column) as unknown;
    } catch {
      return null; // not a JSON object: treated as an empty map
    }
  }
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
}

/** Whether the column holds exactly what the document projects. */
export function columnMatches(target: DocTarget, doc: LoroDoc, column: unknown): boolean {
  if (target.kind === "text") return columnAsDocValue(target, column) === doc.getText(target.field.name).toString();
  const wanted = columnAsDocValue(target, column) ?? {};
  return stableStringify(wanted) === stableStringify(doc.getMap(target.field.name).toJSON());
}

/**
 * Makes the document project to the column's value with an ordinary Loro edit (a text diff, or
 * per-key map sets/deletes), so it merges with concurrent client edits like any other peer's.
 * Returns whether anything changed. Used when something other than `$crdt.push` wrote the column.
 */
export function reconcile(target: DocTarget, doc: LoroDoc, column: unknown): boolean {
  if (columnMatches(target, doc, column)) return false;
  if (target.kind === "text") {
    doc.getText(target.field.name).update(columnAsDocValue(target, column) as string);
  } else {
    const map = doc.getMap(target.field.name);
    const wanted = (columnAsDocValue(target, column) ?? {}) as Record<string, unknown>;
    const current = map.toJSON() as Record<string, unknown>;
    for (const key of Object.keys(current)) if (!Object.hasOwn(wanted, key)) map.delete(key);
    for (const [key, value] of Object.entries(wanted)) {
      if (stableStringify(current[key] ?? null) !== stableStringify(value ?? null)) {
        map.set(key, value as never);
      }
    }
  }
  doc.commit();
  return true;
}
