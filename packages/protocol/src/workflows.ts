/** What `$workflows.get` answers (see docs/workflows.md): one run and its steps as its owner sees them. */

export type WorkflowStatus = "pending" | "running" | "waiting" | "completed" | "failed" | "cancelled";
export type StepKind = "run" | "sleep" | "event";
export type StepStatus = "running" | "waiting" | "completed" | "failed";

/** One step as its owner sees it. */
export interface WorkflowStepState {
  index: number;
  name: string;
  kind: StepKind;
  status: StepStatus;
  result: unknown;
  error: string | null;
  attempts: number;
  /** Sleep: when it wakes; event wait: when it times out. */
  wakeAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** One run as its owner sees it (`$workflows.get`, `useWorkflow`). */
export interface WorkflowState<Output = unknown> {
  id: string;
  name: string;
  status: WorkflowStatus;
  input: unknown;
  output: Output | null;
  error: string | null;
  /** The step reached last (running, waiting, or the last one finished). */
  currentStep: string | null;
  steps: WorkflowStepState[];
  createdAt: string;
  startedAt: string | null;
  updatedAt: string;
  finishedAt: string | null;
}
