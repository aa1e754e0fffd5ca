import { describe, expect, it } from "vitest";
import type { FieldMeta, SchemaMeta } from "../schema/index.ts";
import { conjoin, foldWhere } from "./condition.ts";

const field = (name: string, type: string, isList: boolean): FieldMeta => ({ name, column: name, kind: "scalar", type, isList, isRequired: true, isId: name === "id" });
/** A scratch model with a scalar list and a JSON column (the demo schema has neither). */
const schema: SchemaMeta = {
  models: { Item: { name: "Item", table: "Item", primaryKey: ["id"], fields: { id: field("id", "String", false), tags: field("tags", "String", true), data: field("data", "Json", false) } } },
};

describe("folding scalar-list and JSON filters", () => {
  // Checked against Prisma 6.19.3 on PGlite and Postgres 15 (a scratch `Item { tags String[], data Json }`
  // with rows tags [] and ["x"]): each of these filters returned the same rows at the top level,
  // inside `AND`, and inside `AND: [{ OR: [...] }]` beside an `id` filter — `hasSome: []` none,
  // `hasEvery: []` all, `equals: []` the empty array, JSON `equals: []` / `array_contains: []` as
  // Postgres defines them. Unlike an empty `OR`, nothing is dropped, so they pass through unfolded.
  it("leaves hasSome/hasEvery/equals with empty lists and JSON filters to Prisma, under a policy's AND", () => {
    for (const filter of [{ tags: { hasSome: [] } }, { tags: { hasEvery: [] } }, { tags: { equals: [] } }, { data: { equals: [] } }, { data: { array_contains: [] } }]) {
      expect(foldWhere(schema, "Item", conjoin({ id: "a" }, [filter]))).toEqual({ id: "a", AND: [filter] });
    }
  });

  it("still folds a denied policy beside them", () => {
    expect(foldWhere(schema, "Item", conjoin({ tags: { hasEvery: [] } }, [false]))).toBe(false);
    expect(foldWhere(schema, "Item", { AND: [{ tags: { hasSome: [] } }, { OR: [] }] })).toBe(false);
  });
});
