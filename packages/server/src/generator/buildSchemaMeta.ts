import type { CrdtKind, FieldMeta, ModelMeta, RelationMeta, SchemaMeta } from "../schema/index.ts";

/** The slice of Prisma's DMMF the generator reads (kept structural so tests can build one). */
export interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: string;
  type: string;
  isList: boolean;
  isRequired: boolean;
  isId: boolean;
  relationName?: string | null;
  relationFromFields?: readonly string[] | null;
  relationToFields?: readonly string[] | null;
  documentation?: string | null;
}

export interface DmmfModel {
  name: string;
  dbName?: string | null;
  fields: readonly DmmfField[];
  primaryKey?: { fields: readonly string[] } | null;
}

const CRDT_ANNOTATION = /@crdt\((text|map)\)/;

export function buildSchemaMeta(models: readonly DmmfModel[]): SchemaMeta {
  const byName = new Map(models.map((m) => [m.name, m]));
  const out: Record<string, ModelMeta> = {};
  for (const model of models) {
    const fields: Record<string, FieldMeta> = {};
    for (const field of model.fields) {
      fields[field.name] = toFieldMeta(model, field, byName);
    }
    const primaryKey = model.primaryKey?.fields.length
      ? [...model.primaryKey.fields]
      : model.fields.filter((f) => f.isId).map((f) => f.name);
    out[model.name] = { name: model.name, table: model.dbName ?? model.name, primaryKey, fields };
  }
  return { models: out };
}

function toFieldMeta(model: DmmfModel, field: DmmfField, byName: Map<string, DmmfModel>): FieldMeta {
  const kind = field.kind === "object" || field.kind === "enum" || field.kind === "unsupported"
    ? field.kind
    : "scalar";
  const crdtMatch = field.documentation ? CRDT_ANNOTATION.exec(field.documentation) : null;
  const base = {
    name: field.name,
    kind,
    type: field.type,
    isList: field.isList,
    isRequired: field.isRequired,
    isId: field.isId,
    ...(crdtMatch ? { crdt: crdtMatch[1] as CrdtKind } : {}),
  } satisfies Partial<FieldMeta>;
  if (kind !== "object") return { ...base, column: field.dbName ?? field.name };
  return { ...base, relation: relationOf(model, field, byName) };
}

/**
 * Join columns for a relation field. The side that holds the foreign key has
 * relationFromFields; the other side borrows them from its opposite field, reversed.
 */
function relationOf(model: DmmfModel, field: DmmfField, byName: Map<string, DmmfModel>): RelationMeta {
  const name = field.relationName ?? "";
  if (field.relationFromFields?.length) {
    return {
      name,
      model: field.type,
      fields: [...field.relationFromFields],
      references: [...(field.relationToFields ?? [])],
    };
  }
  const other = byName.get(field.type);
  const opposite = other?.fields.find(
    (f) => f.relationName === name && f.kind === "object" && !(other.name === model.name && f.name === field.name),
  );
  return {
    name,
    model: field.type,
    fields: [...(opposite?.relationToFields ?? [])],
    references: [...(opposite?.relationFromFields ?? [])],
  };
}
