// Projection and reconciliation of both kinds, on a schema with a text and a map field (the
// demo schema only has a text one; the database paths are covered by test/crdt.test.ts).
import { LoroDoc } from "loro-crdt";
import { describe, expect, it } from "vitest";
import type { FieldMeta, SchemaMeta } from "../schema/index.ts";
import { columnMatches, projection, reconcile, resolveTarget } from "./target.ts";

const field = (name: string, type: string, extra: Partial<FieldMeta> = {}): FieldMeta => ({
  name,
  column: name,
  kind: "scalar",
  type,
  isList: false,
  isRequired: true,
  isId: false,
  ...extra,
});

const schema: SchemaMeta = {
  models: {
    Doc: {
      name: "Doc",
      table: "Doc",
      primaryKey: ["id"],
      fields: {
        id: field("id", "Int", { isId: true }),
        body: field("body", "String", { crdt: "text" }),
        props: field("props", "String", { crdt: "map" }),
        meta: field("meta", "Json", { crdt: "map" }),
        title: field("title", "String"),
      },
    },
  },
};

describe("CRDT targets", () => {
  it("resolves CRDT fields and refuses anything else", () => {
    const t = resolveTarget(schema, { model: "Doc", id: "7", field: "body" });
    expect(t.pkValue).toBe(7);
    expect(t.kind).toBe("text");
    expect(() => resolveTarget(schema, { model: "Doc", id: 7, field: "title" })).toThrow(/not a CRDT field/);
    expect(() => resolveTarget(schema, { model: "Doc", id: "x", field: "body" })).toThrow(/integer/);
    expect(() => resolveTarget(schema, { model: "toString", id: 1, field: "body" })).toThrow(/unknown model/);
  });

  it("reconciles a map stored as a JSON string and as Json, merging with a concurrent edit", () => {
    const t = resolveTarget(schema, { model: "Doc", id: 1, field: "props" });
    const server = new LoroDoc();
    server.getMap("props").set("color", "red");
    server.getMap("props").set("size", 3);
    server.commit();
    const client = new LoroDoc();
    client.import(server.export({ mode: "snapshot" }));

    // Someone writes the column directly: size removed, color changed, a nested value added.
    const written = JSON.stringify({ color: "blue", tags: ["a", "b"] });
    expect(columnMatches(t, server, written)).toBe(false);
    expect(reconcile(t, server, written)).toBe(true);
    expect(JSON.parse(projection(t, server) as string)).toEqual({ color: "blue", tags: ["a", "b"] });
    expect(columnMatches(t, server, written)).toBe(true);
    expect(reconcile(t, server, written)).toBe(false);

    // A client's concurrent edit of another key survives the reconciliation.
    client.getMap("props").set("owner", "alice");
    client.commit();
    server.import(client.export({ mode: "update" }));
    expect(server.getMap("props").toJSON()).toEqual({ color: "blue", tags: ["a", "b"], owner: "alice" });

    const json = resolveTarget(schema, { model: "Doc", id: 1, field: "meta" });
    const doc = new LoroDoc();
    expect(reconcile(json, doc, { a: 1 })).toBe(true);
    expect(projection(json, doc)).toEqual({ a: 1 });
    // A column that is not a JSON object projects as an empty map.
    expect(reconcile(t, doc, "not json")).toBe(false);
  });

  it("reconciles text with a diff that keeps a concurrent insert", () => {
    const t = resolveTarget(schema, { model: "Doc", id: 1, field: "body" });
    const server = new LoroDoc();
    server.getText("body").insert(0, "hello world");
    server.commit();
    const client = new LoroDoc();
    client.import(server.export({ mode: "snapshot" }));
    client.getText("body").insert(5, ",");
    client.commit();
    expect(reconcile(t, server, "hello brave world")).toBe(true);
    server.import(client.export({ mode: "update" }));
    expect(projection(t, server)).toBe("hello, brave world");
  });
});
