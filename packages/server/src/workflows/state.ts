import type { ModelMeta, SchemaMeta } from "../schema/index.ts";
import type { SqlConnection } from "../store/index.ts";
import type { StepKind, StepStatus, WorkflowState, WorkflowStatus, WorkflowStepState } from "./types.ts";

/** Tether's workflow tables (see migrate/tetherSchema.ts). */
export const WORKFLOWS_TABLE = "_tether_workflows";
export const WORKFLOW_STEPS_TABLE = "_tether_workflow_steps";
export const WORKFLOW_EVENTS_TABLE = "_tether_workflow_events";

export const FINISHED_WORKFLOW_STATUSES: readonly WorkflowStatus[] = ["completed", "failed", "cancelled"];

type Sql = Pick<SqlConnection, "query">;

export interface WorkflowRow {
  id: string;
  name: string;
  owner_id: string | null;
  status: WorkflowStatus;
  input: unknown;
  output: unknown;
  error: string | null;
  current_step: string | null;
  runner: string | null;
  created_at: Date | string;
  started_at: Date | string | null;
  updated_at: Date | string;
  finished_at: Date | string | null;
}

export interface StepRow {
  idx: number;
  name: string;
  kind: StepKind;
  status: StepStatus;
  result: unknown;
  error: string | null;
  attempts: number;
  wake_at: Date | string | null;
  fired: boolean;
  started_at: Date | string | null;
  finished_at: Date | string | null;
}

const iso = (value: Date | string | null): string | null => (value === null ? null : (value instanceof Date ? value : new Date(value)).toISOString());

export const stepId = (workflowId: string, index: number) => `${workflowId}:${index}`;

export async function readWorkflow(sql: Sql, id: string): Promise<WorkflowRow | null> {
  const rows = await sql.query<WorkflowRow>(
    `SELECT "id", "name", "owner_id", "status", "input", "output", "error", "current_step", "runner", "created_at", "started_at", "updated_at", "finished_at"
     FROM "${WORKFLOWS_TABLE}" WHERE "id" = $1`,
    [id],
  );
  return rows[0] ?? null;
}

export function readSteps(sql: Sql, workflowId: string): Promise<StepRow[]> {
  return sql.query<StepRow>(
    `SELECT "idx", "name", "kind", "status", "result", "error", "attempts", "wake_at", "fired", "started_at", "finished_at"
     FROM "${WORKFLOW_STEPS_TABLE}" WHERE "workflow_id" = $1 ORDER BY "idx"`,
    [workflowId],
  );
}

/** Step results are stored as `{ "v": value }` so `undefined`/null and every JSON value round-trip alike. */
export const resultOf = (stored: unknown): unknown => (stored && typeof stored === "object" && "v" in stored ? (stored as { v: unknown }).v : null);

export function toStepState(row: StepRow): WorkflowStepState {
  return {
    index: row.idx,
    name: row.name,
    kind: row.kind,
    status: row.status,
    result: resultOf(row.result),
    error: row.error,
    attempts: row.attempts,
    wakeAt: iso(row.wake_at),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
  };
}

export function toWorkflowState<Output>(row: WorkflowRow, steps: StepRow[]): WorkflowState<Output> {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    input: row.input ?? null,
    output: (row.output ?? null) as Output | null,
    error: row.error,
    currentStep: row.current_step,
    steps: steps.map(toStepState),
    createdAt: iso(row.created_at)!,
    startedAt: iso(row.started_at),
    updatedAt: iso(row.updated_at)!,
    finishedAt: iso(row.finished_at),
  };
}

const column = (name: string, type = "String", isId = false) => ({
  name,
  column: name,
  kind: "scalar" as const,
  type,
  isList: false,
  isRequired: true,
  isId,
});

/**
 * The workflow tables as models, for the reactor only: `$workflows.get` records `where: { id }`
 * on runs and `where: { workflow_id }` on steps, so a step change re-runs only that run's live
 * queries.
 */
const WORKFLOW_MODELS: Record<string, ModelMeta> = {
  [WORKFLOWS_TABLE]: {
    name: WORKFLOWS_TABLE,
    table: WORKFLOWS_TABLE,
    primaryKey: ["id"],
    fields: { id: column("id", "String", true), name: column("name"), owner_id: column("owner_id"), status: column("status") },
  },
  [WORKFLOW_STEPS_TABLE]: {
    name: WORKFLOW_STEPS_TABLE,
    table: WORKFLOW_STEPS_TABLE,
    primaryKey: ["id"],
    fields: { id: column("id", "String", true), workflow_id: column("workflow_id"), status: column("status") },
  },
};

/** The app's schema plus the workflow tables, for the reactor. */
export function withWorkflowModels(schema: SchemaMeta): SchemaMeta {
  if (schema.models[WORKFLOWS_TABLE]) return schema;
  return { ...schema, models: { ...schema.models, ...WORKFLOW_MODELS } };
}
