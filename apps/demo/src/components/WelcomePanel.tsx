"use client";
import { useQuery } from "@tanstack/react-query";
import type { WorkflowStepState } from "@tether/client";
import { errorCode } from "../lib/errors.ts";
import { useTRPC, useWorkflow } from "../lib/tether.ts";
// Type-only: the run's output and id scheme (nothing of the server is bundled).
import type { WelcomeOutput } from "../server/workflows/index.ts";

/** `welcome:<userId>` (apps/demo/src/server/workflows/welcome.ts; a type import cannot carry the function). */
const welcomeWorkflowId = (userId: string) => `welcome:${userId}`;

const STATUS_LABEL: Record<string, string> = {
  pending: "Starting",
  running: "Running",
  waiting: "Waiting",
  completed: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

const time = (iso: string) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

/** How long a finished step took ("300 ms", "12 s", "3 min", "5 h", "2 days"); "" when it has no timing. */
function duration(step: WorkflowStepState): string {
  if (!step.startedAt || !step.finishedAt) return "";
  const ms = Math.max(0, Date.parse(step.finishedAt) - Date.parse(step.startedAt));
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return ms < 48 * 3_600_000 ? `${Math.round(ms / 3_600_000)} h` : `${Math.round(ms / 86_400_000)} days`;
}

/** What a step did, in words: how long it took, what it waits for and until when. */
function stepDetail(step: WorkflowStepState): string {
  if (step.status === "failed") return step.error ?? "failed";
  if (step.kind === "event") {
    if (step.status === "waiting") return step.wakeAt ? `waiting for it until ${time(step.wakeAt)}` : "waiting for it";
    return step.result === null ? `none arrived in ${duration(step)}` : `arrived after ${duration(step)}`;
  }
  if (step.kind === "sleep" && step.status === "waiting") return step.wakeAt ? `sleeping until ${time(step.wakeAt)}` : "sleeping";
  if (step.status === "running") return step.attempts > 1 ? `running (attempt ${step.attempts})` : "running";
  return step.finishedAt ? `took ${duration(step)}` : "";
}

/**
 * The signed-in user's welcome workflow, live (`useWorkflow`): each step as the engine persisted it,
 * moving as the run sends the welcome, waits for the first project and finishes. Only the run's
 * owner can read it (the engine's check); a user without a run (one from before the workflow
 * existed) sees no panel.
 */
export function WelcomePanel() {
  const trpc = useTRPC();
  const me = useQuery(trpc.me.queryOptions());
  const { workflow, error } = useWorkflow<WelcomeOutput>(me.data ? welcomeWorkflowId(me.data.id) : null);
  if (!me.data || errorCode(error) === "NOT_FOUND") return null;
  return (
    <section className="card welcome" aria-label="Getting started" data-testid="welcome-panel" data-status={workflow?.status ?? "loading"}>
      <div className="welcome-head">
        <h2>Getting started</h2>
        {workflow && <span className={`badge status-${workflow.status}`}>{STATUS_LABEL[workflow.status] ?? workflow.status}</span>}
      </div>
      {!workflow ? (
        error ? (
          <p className="error">{error instanceof Error ? error.message : String(error)}</p>
        ) : (
          <p className="muted">Loading…</p>
        )
      ) : (
        <>
          <ol className="step-list" data-testid="welcome-steps">
            {workflow.steps.map((step) => (
              <li key={step.index} className={`step step-${step.status}`} data-testid="welcome-step" data-name={step.name} data-status={step.status}>
                <span className="step-dot" aria-hidden="true" />
                <span className="step-name">{step.name}</span>
                <span className="muted small">{stepDetail(step)}</span>
              </li>
            ))}
          </ol>
          <p className="muted small" data-testid="welcome-summary">
            {workflow.status === "completed"
              ? workflow.output?.firstProject
                ? `Your first project: ${workflow.output.firstProject.name}.`
                : "No project yet: see the nudge in your inbox."
              : workflow.status === "waiting"
                ? "Create a project to finish getting started."
                : workflow.error ?? `Current step: ${workflow.currentStep ?? "starting"}`}
          </p>
        </>
      )}
    </section>
  );
}
