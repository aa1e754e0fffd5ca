"use client";
import { useState } from "react";
import { useJob, useLiveMutation, useLiveQuery, useTRPC } from "../lib/tether.ts";

/** What the exportCsv job returns (its `output`): see apps/demo/src/server/jobs/exportCsv.ts. */
interface ExportOutput {
  exportId: string;
  rows: number;
  url: string | null;
}

const RUNNING = new Set(["queued", "active", "retrying"]);

/**
 * "Export project as CSV": the button starts a background job (its enqueue commits with the
 * mutation); the bar is the job's live state (`useJob`), moving as the job reports progress; the
 * download link appears when it completes. The caller's latest export is looked up live, so a
 * reload (or a second tab) finds the running or finished export again.
 */
export function ExportPanel({ projectId }: { projectId: string }) {
  const trpc = useTRPC();
  const latest = useLiveQuery(trpc.exports.latest.queryOptions({ projectId }));
  const start = useLiveMutation(trpc.exports.start.mutationOptions());
  const [started, setStarted] = useState<string | null>(null);
  const jobId = started ?? latest.data?.jobId ?? null;
  const { job, cancel, error: watchError } = useJob<ExportOutput>(jobId);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const running = job ? RUNNING.has(job.status) : start.isPending;
  const progress = Math.round(job?.progress ?? 0);

  async function onExport() {
    setCancelError(null);
    try {
      const { jobId: id } = await start.mutateAsync({ projectId });
      setStarted(id);
    } catch {
      // shown below
    }
  }

  async function onCancel() {
    try {
      await cancel();
    } catch (error) {
      setCancelError(error instanceof Error ? error.message : String(error));
    }
  }

  const failure = start.error?.message ?? cancelError ?? (job?.status === "failed" ? (job.error ?? "The export failed") : null) ?? (watchError instanceof Error ? watchError.message : null);
  return (
    <section className="card export" aria-label="Export" data-testid="export-panel" data-status={job?.status ?? "none"}>
      <h2>Export</h2>
      <div className="row">
        <button type="button" className="button" onClick={onExport} disabled={running} data-testid="export-start">
          Export project as CSV
        </button>
        {running && job && (
          <button type="button" className="button ghost" onClick={onCancel} data-testid="export-cancel">
            Cancel
          </button>
        )}
      </div>
      {job && (
        <div className="export-progress">
          <div
            className="progress"
            role="progressbar"
            aria-label="Export progress"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={progress}
            data-testid="export-progress"
            data-progress={progress}
          >
            <span style={{ width: `${progress}%` }} />
          </div>
          <p className="muted small" data-testid="export-message">
            {job.status === "queued" ? "Waiting for a worker…" : job.status === "cancelled" ? "Cancelled." : (job.message ?? `${progress}%`)}
          </p>
        </div>
      )}
      {job?.status === "completed" && job.output?.url && (
        <p>
          <a className="button ghost" href={job.output.url} download data-testid="export-download">
            Download CSV ({job.output.rows} {job.output.rows === 1 ? "task" : "tasks"})
          </a>
        </p>
      )}
      {failure && (
        <p className="error" role="alert" data-testid="export-error">
          {failure}
        </p>
      )}
    </section>
  );
}
