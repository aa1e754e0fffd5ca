// Type-level checks of workflows: `ctx.workflows.start` checks names and inputs against the
// workflows router, outputs are inferred from the body, and the client's copy of WorkflowState
// stays the server's.
import { describe, expectTypeOf, it } from "vitest";
import type { WorkflowOutput, WorkflowState as ServerWorkflowState } from "@tether/server";
import type { WorkflowState as ClientWorkflowState } from "@tether/client";
import type { buildWorkflowsApp } from "./fixtures/workflowsApp.ts";

type Workflows = ReturnType<typeof buildWorkflowsApp>["router"]["workflows"];

describe("workflow types", () => {
  it("outputs are inferred from bodies; the client's WorkflowState is the server's", () => {
    expectTypeOf<WorkflowOutput<Workflows, "three">>().toEqualTypeOf<{ tag: string; by: string | null; nodes: string[]; key: string }>();
    expectTypeOf<WorkflowOutput<Workflows, "changing">>().toEqualTypeOf<string>();
    expectTypeOf<ClientWorkflowState<{ n: number }>>().toEqualTypeOf<ServerWorkflowState<{ n: number }>>();
  });
});
