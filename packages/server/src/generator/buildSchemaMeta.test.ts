import { describe, expect, it } from "vitest";
import { schema } from "../../../../generated/tether/index.ts";
import { findModel } from "../schema/index.ts";
import { buildSchemaMeta } from "./buildSchemaMeta.ts";

describe("Tether's Prisma generator output", () => {
  it("describes tables, keys and both sides of each relation", () => {
    const task = schema.models.Task;
    expect(task.table).toBe("Task");
    expect(task.primaryKey).toEqual(["id"]);
    expect(task.fields.project.relation).toEqual({ name: "ProjectToTask", model: "Project", fields: ["projectId"], references: ["id"] });
    expect(schema.models.Project.fields.tasks.relation).toEqual({ name: "ProjectToTask", model: "Task", fields: ["id"], references: ["projectId"] });
    expect(schema.models.Attachment.fields.data.type).toBe("Bytes");
    expect(findModel(schema, "task")?.name).toBe("Task");
  });

  it("reads @crdt annotations and @map column names", () => {
    const meta = buildSchemaMeta([
      {
        name: "Note",
        dbName: "notes",
        primaryKey: null,
        fields: [
          { name: "id", kind: "scalar", type: "String", isList: false, isRequired: true, isId: true },
          { name: "body", dbName: "body_text", kind: "scalar", type: "String", isList: false, isRequired: true, isId: false, documentation: "@crdt(text)" },
        ],
      },
    ]);
    expect(meta.models.Note).toMatchObject({ table: "notes", primaryKey: ["id"] });
    expect(meta.models.Note?.fields.body).toMatchObject({ column: "body_text", crdt: "text" });
  });
});
