/**
 * Model metadata: tables, primary keys, columns and relations of the app's Prisma schema.
 * Produced by Tether's Prisma generator (`generator tether` in schema.prisma) from Prisma's DMMF,
 * read by change capture, ReadSet relation walking, policies and CRDT fields.
 */

export type CrdtKind = "text" | "map";

export interface FieldMeta {
  /** Prisma field name. */
  readonly name: string;
  /** Database column name (`@map`), or the field name. Undefined for relation fields. */
  readonly column?: string;
  readonly kind: "scalar" | "object" | "enum" | "unsupported";
  /** Prisma type: `String`, `Int`, `Bytes`, … or the related model's name for relations. */
  readonly type: string;
  readonly isList: boolean;
  readonly isRequired: boolean;
  readonly isId: boolean;
  /** For relation fields: how this model's rows join the related model's rows. */
  readonly relation?: RelationMeta;
  /** `/// @crdt(text)` or `/// @crdt(map)` on the field. */
  readonly crdt?: CrdtKind;
}

export interface RelationMeta {
  readonly name: string;
  readonly model: string;
  /** Columns-as-fields on this model that join to `references` on the related model. */
  readonly fields: readonly string[];
  readonly references: readonly string[];
}

export interface ModelMeta {
  readonly name: string;
  readonly table: string;
  readonly primaryKey: readonly string[];
  readonly fields: Readonly<Record<string, FieldMeta>>;
}

export interface SchemaMeta {
  readonly models: Readonly<Record<string, ModelMeta>>;
}

/** Looks a model up by Prisma name or by table name. */
export function findModel(schema: SchemaMeta, nameOrTable: string): ModelMeta | undefined {
  const direct = schema.models[nameOrTable];
  if (direct) return direct;
  const lower = nameOrTable.toLowerCase();
  return Object.values(schema.models).find(
    (m) => m.table === nameOrTable || m.name.toLowerCase() === lower,
  );
}
