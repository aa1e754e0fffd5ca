import { TRPCError } from "@trpc/server";
import { REFERENCE_NOT_FOUND } from "../errors/index.ts";
import { clientProperty, runWithPolicyScope, type AnyModelPolicy } from "../policies/index.ts";
import type { FieldMeta, ModelMeta, SchemaMeta } from "../schema/index.ts";

type Row = Record<string, unknown>;
type RuleCtx = { db: unknown };
type CountDelegate = { count(args: { where: Row }): Promise<number> };

/** To-one relations whose foreign key is on `meta`'s rows (`Task.project` via `projectId`). */
function foreignKeys(meta: ModelMeta): FieldMeta[] {
  return Object.values(meta.fields).filter(
    (f) => f.relation && !f.isList && f.relation.fields.length > 0 && !f.relation.fields.every((k) => meta.primaryKey.includes(k)),
  );
}

/**
 * The existence oracle, closed. A create (or a move) naming a parent the caller cannot read would
 * otherwise answer differently for "no such parent" (Postgres' foreign-key violation, mapped to
 * NOT_FOUND in errors/) and "someone else's parent" (the rule refuses: FORBIDDEN). Each model's
 * `create`/`update` rule is wrapped: when it refuses a row whose newly set foreign key names a row
 * the caller's own `read` policy does not admit, the refusal is NOT_FOUND with the very message of
 * the foreign-key violation. A refusal about a parent the caller can read stays FORBIDDEN (the
 * caller already knows that row exists). The readability check runs only on refusals.
 */
export function hideUnreadableReferences(
  policies: Record<string, AnyModelPolicy | undefined>,
  schema: SchemaMeta,
): Record<string, AnyModelPolicy | undefined> {
  const byProperty = new Map(Object.values(schema.models).map((m) => [clientProperty(m.name), m]));
  const out: Record<string, AnyModelPolicy | undefined> = {};
  for (const [key, policy] of Object.entries(policies)) {
    const meta = schema.models[key] ?? byProperty.get(key);
    const keys = meta ? foreignKeys(meta) : [];
    if (!policy || keys.length === 0) {
      out[key] = policy;
      continue;
    }
    const { create, update } = policy;
    out[key] = {
      ...policy,
      ...(create && {
        create: async (ctx: RuleCtx, row: Row) => {
          const ok = await create(ctx, row);
          if (ok !== true) await assertReferencesReadable(ctx, keys, row, null);
          return ok;
        },
      }),
      ...(update && {
        update: async (ctx: RuleCtx, row: Row, next: Row) => {
          const ok = await update(ctx, row, next);
          if (ok !== true) await assertReferencesReadable(ctx, keys, next, row);
          return ok;
        },
      }),
    } as AnyModelPolicy;
  }
  return out;
}

/** NOT_FOUND when a foreign key of `row` (one that changed from `before`) names a row the caller cannot read. */
async function assertReferencesReadable(ctx: RuleCtx, keys: readonly FieldMeta[], row: Row, before: Row | null): Promise<void> {
  for (const field of keys) {
    const relation = field.relation!;
    const where: Row = {};
    relation.fields.forEach((column, i) => (where[relation.references[i]!] = row[column]));
    if (Object.values(where).some((v) => v === null || v === undefined)) continue;
    if (before && relation.fields.every((column) => before[column] === row[column])) continue;
    const delegate = (ctx.db as Record<string, CountDelegate | undefined>)[clientProperty(relation.model)];
    if (!delegate) continue;
    // Rules run with policies suspended: the caller's own scope again, for their `read` of the parent.
    const visible = await runWithPolicyScope({ ctx, db: ctx.db, transactional: true }, async () => await delegate.count({ where }));
    if (visible === 0) throw new TRPCError({ code: "NOT_FOUND", message: REFERENCE_NOT_FOUND });
  }
}
